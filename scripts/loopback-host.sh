# Sourced by scripts/demo.sh and bench/hosts.sh: a host on loopback set up as tests/hosts.rs sets
# one up. OpenSSH's server letting in the non-root converge-deploy user (scripts/hosts.sh creates
# it), an nginx of its own with the sudoers line of docs/hosts.md, the machine's Docker Engine, and
# the FROM-scratch busybox test app (tests/fixtures/hostapp). Needs root (sshd, nginx, sudoers.d).
#
#   loopback_host_start DIR     starts it in DIR; sets lh_ssh_port, lh_http_port, lh_key (the
#                               deploy key's file) and lh_proxy (a `rollout.proxy` block)
#   loopback_app_image REPO TAG builds the test app as REPO:TAG (its VERSION is TAG)
#   loopback_host_stop APP...   stops sshd and nginx, removes the sudoers line and the apps'
#                               containers, networks and backups
#   loopback_free_port          prints a free loopback port

loopback_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

lh_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

loopback_host_start() {
  lh_dir="$1"
  # sshd reads authorized_keys as the deploy user: every directory above it must let it through.
  mkdir -p "$lh_dir" && chmod 0755 "$lh_dir" "$(dirname "$lh_dir")"
  lh_ssh_port=$(loopback_free_port)
  lh_http_port=$(loopback_free_port)
  while [[ "$lh_http_port" == "$lh_ssh_port" ]]; do lh_http_port=$(loopback_free_port); done
  lh_sudoers=/etc/sudoers.d/converge-loopback-$lh_ssh_port
  mkdir -p "$lh_dir/image"
  cp "$lh_repo"/tests/fixtures/hostapp/{Dockerfile,app,alembic,elspeth} /bin/busybox "$lh_dir/image/" 2>/dev/null \
    || { echo "loopback host: tests/fixtures/hostapp and /bin/busybox are needed (scripts/hosts.sh)" >&2; return 1; }
  ssh-keygen -q -t ed25519 -N "" -f "$lh_dir/client"
  ssh-keygen -q -t ed25519 -N "" -f "$lh_dir/host_key"
  lh_key="$lh_dir/client"
  cp "$lh_dir/client.pub" "$lh_dir/authorized_keys"; chmod 0644 "$lh_dir/authorized_keys"
  printf 'Port %s\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin no\nAllowUsers converge-deploy\n' \
    "$lh_ssh_port" "$lh_dir/host_key" "$lh_dir/sshd.pid" "$lh_dir/authorized_keys" >"$lh_dir/sshd_config"
  /usr/sbin/sshd -D -e -f "$lh_dir/sshd_config" 2>/dev/null &
  lh_sshd_pid=$!
  mkdir -p "$lh_dir/converge" "$lh_dir/temp" "$lh_dir/data" && chown converge-deploy "$lh_dir/converge"
  cat >"$lh_dir/nginx.conf" <<NGINX
pid $lh_dir/nginx.pid;
error_log $lh_dir/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $lh_dir/temp/body; proxy_temp_path $lh_dir/temp/proxy;
  fastcgi_temp_path $lh_dir/temp/fastcgi; uwsgi_temp_path $lh_dir/temp/uwsgi; scgi_temp_path $lh_dir/temp/scgi;
  include $lh_dir/converge/*.conf;
}
NGINX
  /usr/sbin/nginx -c "$lh_dir/nginx.conf"
  echo "converge-deploy ALL=(root) NOPASSWD: /usr/sbin/nginx -c $lh_dir/nginx.conf -t, /usr/sbin/nginx -c $lh_dir/nginx.conf -s reload" >"$lh_sudoers"
  chmod 0440 "$lh_sudoers"
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$lh_ssh_port") 2>/dev/null && break; sleep 0.1; done
  lh_proxy="{ nginx: { server_name: SERVER_NAME, listen: $lh_http_port, config: $lh_dir/nginx.conf, include_dir: $lh_dir/converge, pid_file: $lh_dir/nginx.pid } }"
}

loopback_app_image() {
  DOCKER_BUILDKIT=0 docker build -q --build-arg "VERSION=$2" -t "$1:$2" "$lh_dir/image" >/dev/null
}

loopback_host_stop() {
  [[ -n "${lh_sshd_pid:-}" ]] && kill "$lh_sshd_pid" 2>/dev/null
  [[ -n "${lh_dir:-}" ]] && /usr/sbin/nginx -c "$lh_dir/nginx.conf" -s stop 2>/dev/null
  [[ -n "${lh_sudoers:-}" ]] && rm -f "$lh_sudoers"
  local app ids
  for app in "$@"; do
    ids=$(docker ps -aq --filter "label=converge.app=$app")
    [[ -n "$ids" ]] && docker rm -f $ids >/dev/null
    docker network rm "converge-$app" "converge-$app-live" >/dev/null 2>&1 || true
    rm -rf "/home/converge-deploy/.converge/backups/$app"
  done
  return 0
}
