#!/usr/bin/env bash
# Builds the Debian base converge's runtime image starts from, on a machine that can pull no
# image: `debootstrap --variant=minbase bookworm` from Debian's own archive into a directory,
# then `docker import` as converge-local/debian:bookworm-slim. Does nothing when that image
# exists. Needs root and Docker. The Dockerfile takes it with
#   --build-arg BASE=converge-local/debian:bookworm-slim
set -euo pipefail
tag="${CONVERGE_DEBIAN_BASE:-converge-local/debian:bookworm-slim}"
docker image inspect "$tag" >/dev/null 2>&1 && exit 0
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }
log="$(mktemp -t converge-debian-base.XXXXXX)"
root="$(mktemp -d -t converge-debian-root.XXXXXX)"
trap 'rm -f "$log"; as_root rm -rf "$root"' EXIT
fail() { echo "error: scripts/debian-base.sh: $*" >&2; [[ -s "$log" ]] && tail -20 "$log" | sed 's/^/  | /' >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >"$log" 2>&1 \
    || { as_root apt-get update -q >>"$log" 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >>"$log" 2>&1; } \
    || fail "cannot install debootstrap"
fi
as_root debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$log" 2>&1 \
  || fail "debootstrap of bookworm failed"
# What a container image leaves out, as Debian's own slim images do: downloaded packages,
# package lists, logs, and documentation, manual pages and translations (kept out of later
# installs too).
as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
  'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
  | as_root tee "$root/etc/dpkg/dpkg.cfg.d/converge-slim" >/dev/null
as_root tar -C "$root" --numeric-owner -c . | docker import - "$tag" >"$log" 2>&1 \
  || fail "docker import failed"
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
