#!/usr/bin/env bash
# README command 1: install what is needed, start the local stack, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/cloud-factory stack up
exec .venv/bin/cloud-factory demo "$@"
