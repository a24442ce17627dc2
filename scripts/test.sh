#!/usr/bin/env bash
# The whole test suite: unit tests, then the integration tests that run the real binary
# against moto (started by the tests on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CONVERGE_MOTO_SERVER="$PWD/.venv/bin/moto_server"
export CONVERGE_PYTHON="$PWD/.venv/bin/python"
# Tests must never reach a real cloud or the instance metadata service.
export AWS_EC2_METADATA_DISABLED=true
cargo nextest run --all-targets --no-fail-fast "$@"
