#!/usr/bin/env bash
# What the tests of apps on hosts need on this machine (issue 15): OpenSSH's server, run by each
# test on a loopback port of its own with a generated host key (no system-wide sshd is started).
# Installs Debian's package when absent. Quiet on success; on failure prints why and exits 1.
set -euo pipefail
log="$(mktemp -t converge-hosts.XXXXXX)"
trap 'rm -f "$log"' EXIT
fail() { echo "error: scripts/hosts.sh: $*" >&2; [[ -s "$log" ]] && sed 's/^/  | /' "$log" >&2; exit 1; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

if [[ ! -x /usr/sbin/sshd ]]; then
  # A policy-rc.d that says no keeps the package from starting a system sshd on port 22 (one the
  # machine already has is left as it is).
  made_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 0755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  { as_root apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq openssh-server; } >"$log" 2>&1 \
    || { [[ -n $made_policy ]] && as_root rm -f /usr/sbin/policy-rc.d; fail "could not install Debian's openssh-server package"; }
  [[ -n $made_policy ]] && as_root rm -f /usr/sbin/policy-rc.d
fi
[[ -x /usr/sbin/sshd ]] || fail "/usr/sbin/sshd is missing after installing openssh-server"
# sshd's privilege-separation directory (the package's service unit makes it at boot).
[[ -d /run/sshd ]] || as_root mkdir -p -m 0755 /run/sshd
for tool in ssh ssh-keygen ssh-keyscan; do
  command -v "$tool" >/dev/null || fail "$tool is missing (Debian's openssh-client)"
done
