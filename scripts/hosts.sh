#!/usr/bin/env bash
# What the tests of apps on hosts need on this machine (issue 15): OpenSSH's server, nginx and
# Debian's docker-registry, each run by a test on loopback ports of its own (no system-wide
# service is started), sudo for the deploy user's root steps, busybox-static for the test image
# (built FROM scratch: this machine can pull no image) and htpasswd for the registry's basic
# auth, util-linux and iproute2 for the two-host test's namespaced second host. Installs Debian's
# packages when absent. Quiet on success; on failure prints why, exits 1.
set -euo pipefail
log="$(mktemp -t converge-hosts.XXXXXX)"
trap 'rm -f "$log"' EXIT
fail() { echo "error: scripts/hosts.sh: $*" >&2; [[ -s "$log" ]] && sed 's/^/  | /' "$log" >&2; exit 1; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

need=()
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
[[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
[[ -x /usr/bin/docker-registry ]] || need+=(docker-registry)
[[ -x /usr/bin/sudo ]] || need+=(sudo)
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v htpasswd >/dev/null || need+=(apache2-utils)
# The two-host test's second host lives in namespaces of its own (unshare, nsenter, ip) with a
# second Docker daemon of the machine's Docker Engine.
command -v unshare >/dev/null && command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
if (( ${#need[@]} )); then
  # A policy-rc.d that says no keeps the packages from starting a system sshd, nginx or registry
  # (ones the machine already runs are left as they are).
  made_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 0755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  { as_root apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}"; } >"$log" 2>&1 \
    || { [[ -n $made_policy ]] && as_root rm -f /usr/sbin/policy-rc.d; fail "could not install Debian's ${need[*]}"; }
  [[ -n $made_policy ]] && as_root rm -f /usr/sbin/policy-rc.d
fi
for tool in /usr/sbin/sshd /usr/sbin/nginx /usr/bin/docker-registry /usr/bin/sudo /bin/busybox; do
  [[ -x $tool ]] || fail "$tool is missing after installing ${need[*]}"
done
command -v htpasswd >/dev/null || fail "htpasswd is missing (Debian's apache2-utils)"
for tool in unshare nsenter ip; do
  command -v "$tool" >/dev/null || fail "$tool is missing (Debian's util-linux, iproute2)"
done
[[ -x /usr/sbin/dockerd ]] || fail "/usr/sbin/dockerd is missing: the host tests need the machine's Docker Engine"
# sshd's privilege-separation directory (the package's service unit makes it at boot).
[[ -d /run/sshd ]] || as_root mkdir -p -m 0755 /run/sshd
for tool in ssh ssh-keygen ssh-keyscan; do
  command -v "$tool" >/dev/null || fail "$tool is missing (Debian's openssh-client)"
done
# The host tests log in as a non-root deploy user in the docker group, as converge's hosts do
# (docs/hosts.md); /etc/converge is where releases before the Engine API kept env files, which
# destroy still removes.
if ! id converge-deploy >/dev/null 2>&1; then
  as_root useradd --create-home --shell /bin/sh --groups docker converge-deploy >"$log" 2>&1 \
    || fail "could not create the test deploy user converge-deploy"
fi
id -nG converge-deploy | grep -qw docker || as_root usermod -aG docker converge-deploy
# No password, and not locked: sshd without PAM refuses a locked account even to a key.
[[ "$(as_root getent shadow converge-deploy | cut -d: -f2)" == "*" ]] || as_root usermod -p '*' converge-deploy
as_root install -d -o converge-deploy -g converge-deploy -m 0700 /etc/converge
