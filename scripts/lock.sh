#!/usr/bin/env bash
# Writes requirements.lock: every package the container image installs (the project's dependencies
# with the `otlp` extra, plus the build backend), each pinned to one version with the sha256 of
# every file PyPI serves for it, for any Linux/Python 3.11+ platform. The Dockerfile installs it with
# `pip --require-hashes`. Run after changing a dependency in pyproject.toml; the test suite checks
# the lock still satisfies pyproject.toml (tests/unit/test_container_image.py).
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
[[ -x $uv ]] || { echo "error: $uv is missing; run scripts/setup.sh (uv comes with the dev extra)" >&2; exit 1; }
build_backend=$(python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")')
# The build backend comes from the same lock: the image builds the project without network access
# to anything unpinned (`pip install --no-build-isolation`).
printf '%s\n' "$build_backend" | "$uv" pip compile pyproject.toml - --extra otlp --generate-hashes --universal \
  --python-version 3.11 --no-header --quiet -o requirements.lock
sed -i '1i # The container image'"'"'s locked install (scripts/lock.sh writes it; do not edit by hand).' requirements.lock
echo "wrote requirements.lock ($(grep -c '^[a-z0-9].*==' requirements.lock) packages)"
