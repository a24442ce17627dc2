#!/usr/bin/env bash
# The whole test suite: unit tests, then the integration tests that run the real binary
# against moto (started by the tests on free loopback ports) with SQLite and PostgreSQL state.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CONVERGE_MOTO_SERVER="$PWD/.venv/bin/moto_server"
export CONVERGE_PYTHON="$PWD/.venv/bin/python"
# The PostgreSQL state tests use the server on 127.0.0.1:5432 (trust auth, user postgres), or
# CONVERGE_TEST_POSTGRES_URL. Without it they would fail one by one: say so once, up front.
pg="${CONVERGE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
pg_hostport="${pg##*@}"; pg_hostport="${pg_hostport%%/*}"
if ! (exec 3<>"/dev/tcp/${pg_hostport%:*}/${pg_hostport##*:}") 2>/dev/null; then
  echo "error: PostgreSQL is not reachable at $pg_hostport; the state backend tests need it." >&2
  echo "       Start it (trust auth, user postgres) or set CONVERGE_TEST_POSTGRES_URL." >&2
  exit 1
fi
# Tests must never reach a real cloud or the instance metadata service.
export AWS_EC2_METADATA_DISABLED=true CONVERGE_AZURE_IMDS_DISABLED=true
# The example workflows and the container image definition must pass their linters.
.venv/bin/actionlint examples/github-actions/*.yml
.venv/bin/hadolint Dockerfile
echo "actionlint and hadolint: clean"
cargo nextest run --lib --bins --tests --no-fail-fast "$@"
