#!/usr/bin/env bash
# README command 2: install what is needed, then run the whole test suite against the real
# Kafka, Temporal and PostgreSQL (the test session starts them with `cloud-factory stack up`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
