#!/usr/bin/env bash
# Refresh benchmark: N ECR repositories + N ECS services in moto (default N = 100 and 500), a
# no-change `converge plan` timed with its cloud API calls counted, next to a naive
# one-call-per-resource read. Prints a table. Usage: bench/refresh.sh [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CONVERGE_MOTO_SERVER="$PWD/.venv/bin/moto_server"
export CONVERGE_PYTHON="$PWD/.venv/bin/python"
export AWS_EC2_METADATA_DISABLED=true
cargo bench --bench refresh -- "$@"
