# Shared by the host benchmarks (bench/hosts.sh, bench/compose.sh); sourced, after $py and
# $http_port are set.

# A keep-alive client through nginx on $http_port with `Host: $1`, as tests/support/hosts.rs has
# one: runs in the background until SIGTERM, then prints "failed reconnects".
client() {
  "$py" - "$http_port" "$1" <<'PY' &
import http.client, sys, time, signal
port, host = int(sys.argv[1]), sys.argv[2]; failed = reconnects = 0; stop = False
def done(*_):
    global stop; stop = True
signal.signal(signal.SIGTERM, done)
conn = None
while not stop:
    reused = conn is not None
    if conn is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse(); r.read()
        if r.status != 200: failed += 1; conn = None
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        if reused: reconnects += 1
        else: failed += 1
        conn = None
    except Exception:
        failed += 1; conn = None
    time.sleep(0.005)
print(failed, reconnects, flush=True)
PY
}
