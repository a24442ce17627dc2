#!/usr/bin/env bash
# Makes sure a PostgreSQL server listens on 127.0.0.1:5432 with trust authentication for the user
# `postgres` (what the state-backend tests use). Does nothing when one is already reachable.
# Otherwise: installs Debian's `postgresql` package when absent, creates a cluster when there is
# none, puts trust lines for `postgres` on loopback first in pg_hba.conf, starts the cluster and
# waits until it answers. Quiet on success; on failure prints what went wrong and exits 1.
set -euo pipefail

port=5432
log="$(mktemp -t converge-postgres.XXXXXX)"
trap 'rm -f "$log"' EXIT
fail() { echo "error: scripts/postgres.sh: $*" >&2; [[ -s "$log" ]] && sed 's/^/  | /' "$log" >&2; exit 1; }
reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }
trusts() { psql "postgres://postgres@127.0.0.1:$port/postgres" -Atqc 'select 1' >/dev/null 2>&1; }

if reachable; then
  trusts || fail "a server listens on 127.0.0.1:$port but does not let user postgres in without a password (the tests need trust auth; or set CONVERGE_TEST_POSTGRES_URL)"
  exit 0
fi

if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || ! command -v pg_ctlcluster >/dev/null; then
  { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql; } >"$log" 2>&1 \
    || fail "could not install Debian's postgresql package"
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
[[ -n "$version" ]] || fail "no PostgreSQL version under /usr/lib/postgresql after install"
if [[ ! -f "/etc/postgresql/$version/main/postgresql.conf" ]]; then
  as_root pg_createcluster "$version" main --port "$port" >"$log" 2>&1 || fail "pg_createcluster $version main failed"
fi

conf="/etc/postgresql/$version/main"
hba="$conf/pg_hba.conf"
if ! as_root grep -q '^# converge: trust on loopback' "$hba"; then
  tmp="$(mktemp)"
  {
    echo '# converge: trust on loopback for the user postgres (scripts/postgres.sh, for the test suite)'
    echo 'host    all    postgres    127.0.0.1/32    trust'
    echo 'host    all    postgres    ::1/128         trust'
    as_root cat "$hba"
  } >"$tmp"
  as_root install -m 0640 -o postgres -g postgres "$tmp" "$hba" || fail "could not write $hba"
  rm -f "$tmp"
fi
as_root sed -i -E "s/^#?port = [0-9]+/port = $port/; s/^#?listen_addresses = '[^']*'/listen_addresses = '127.0.0.1'/" "$conf/postgresql.conf"

# A stale pid file from a machine that was stopped uncleanly keeps pg_ctlcluster from starting.
as_root pg_ctlcluster "$version" main start >"$log" 2>&1 || as_root pg_ctlcluster "$version" main restart >>"$log" 2>&1 \
  || fail "pg_ctlcluster $version main start failed"

for _ in $(seq 1 60); do
  if reachable && trusts; then exit 0; fi
  sleep 0.5
done
as_root tail -n 30 "/var/log/postgresql/postgresql-$version-main.log" >"$log" 2>&1 || true
fail "PostgreSQL $version did not answer on 127.0.0.1:$port with trust auth within 30 s"
