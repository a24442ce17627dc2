#!/usr/bin/env bash
# Installs what the demo and the tests need that cargo does not: moto's server in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/moto_server ]]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet 'moto[server]>=5' boto3
fi
.venv/bin/moto_server --help >/dev/null || { echo "moto_server did not install" >&2; exit 1; }
