#!/usr/bin/env bash
# Compares MinkHTTP with nginx on GET /healthz: wrk -t2 -c64 -d10s against each.
# Usage: Benchmarks/http/bench.sh [duration, default 10s]
set -euo pipefail
cd "$(dirname "$0")"
DURATION="${1:-10s}"
MINK_PORT=18081
NGINX_PORT=18082

command -v wrk >/dev/null || apt-get install -y wrk
command -v nginx >/dev/null || apt-get install -y nginx-light

swift build -c release
BIN="$(swift build -c release --show-bin-path)/MinkHTTPBench"

TMP="$(mktemp -d)"
cleanup() {
    [ -n "${MINK_PID:-}" ] && kill "$MINK_PID" 2>/dev/null || true
    [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

cat > "$TMP/nginx.conf" <<CONF
worker_processes 2;
pid $TMP/nginx.pid;
error_log $TMP/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP;
    proxy_temp_path $TMP;
    fastcgi_temp_path $TMP;
    uwsgi_temp_path $TMP;
    scgi_temp_path $TMP;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /healthz {
            default_type "application/json; charset=utf-8";
            return 200 '{"status":"ok"}';
        }
    }
}
CONF

"$BIN" "$MINK_PORT" & MINK_PID=$!
nginx -c "$TMP/nginx.conf"
sleep 1
curl -fsS "http://127.0.0.1:$MINK_PORT/healthz" >/dev/null
curl -fsS "http://127.0.0.1:$NGINX_PORT/healthz" >/dev/null

rps() { wrk -t2 -c64 -d"$DURATION" "$1" | tee /dev/stderr | awk '/Requests\/sec/ {print $2}'; }
echo "== MinkHTTP"
MINK=$(rps "http://127.0.0.1:$MINK_PORT/healthz")
echo "== nginx"
NGINX=$(rps "http://127.0.0.1:$NGINX_PORT/healthz")
echo
echo "MinkHTTP: $MINK req/s"
echo "nginx:    $NGINX req/s"
awk -v m="$MINK" -v n="$NGINX" 'BEGIN { printf "ratio:    %.2fx nginx\n", m / n }'
