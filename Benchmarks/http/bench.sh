#!/usr/bin/env bash
# GET /healthz with `wrk -t2 -c64` against the MinkHTTP example server (MinkHTTPBench),
# the real daemon (`minkd serve --storage memory --log-level warning`) and nginx serving a
# fixed 200, in the same run. The three are measured in turns, ROUNDS times, and the
# medians and the ratios to nginx are reported (the machine may be shared: the load
# average is printed too).
# Usage: Benchmarks/http/bench.sh [duration, default 10s] [rounds, default 3]
#        MINKHTTP_BENCH_BIN=... MINKD_BIN=... Benchmarks/http/bench.sh   (prebuilt binaries)
set -euo pipefail
# Prebuilt binaries given relative to the caller's directory.
[ -n "${MINKHTTP_BENCH_BIN:-}" ] && MINKHTTP_BENCH_BIN=$(realpath "$MINKHTTP_BENCH_BIN")
[ -n "${MINKD_BIN:-}" ] && MINKD_BIN=$(realpath "$MINKD_BIN")
cd "$(dirname "$0")"
DURATION="${1:-10s}"
ROUNDS="${2:-3}"
MINK_PORT=$((20000 + RANDOM % 10000))
NGINX_PORT=$((MINK_PORT + 1))
MINKD_PORT=$((MINK_PORT + 2))

command -v wrk >/dev/null || apt-get install -y wrk
command -v nginx >/dev/null || apt-get install -y nginx-light

# MINKHTTP_BENCH_BIN / MINKD_BIN measure given binaries (e.g. an older build) instead.
if [ -n "${MINKHTTP_BENCH_BIN:-}" ]; then BIN="$MINKHTTP_BENCH_BIN"; else
    (cd ../.. && swift build -c release --product MinkHTTPBench >/dev/null)
    BIN="$(cd ../.. && swift build -c release --show-bin-path)/MinkHTTPBench"
fi
if [ -n "${MINKD_BIN:-}" ]; then MINKD="$MINKD_BIN"; else
    (cd ../.. && swift build -c release --product minkd >/dev/null)
    MINKD="$(cd ../.. && swift build -c release --show-bin-path)/minkd"
fi

TMP="$(mktemp -d)"
cleanup() {
    [ -n "${MINK_PID:-}" ] && kill "$MINK_PID" 2>/dev/null || true
    [ -n "${MINKD_PID:-}" ] && kill "$MINKD_PID" 2>/dev/null || true
    [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
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

"$BIN" "$MINK_PORT" >/dev/null & MINK_PID=$!
"$MINKD" serve --storage memory --listen "127.0.0.1:$MINKD_PORT" --log-level warning 2>"$TMP/minkd.log" & MINKD_PID=$!
nginx -c "$TMP/nginx.conf"
for port in "$MINK_PORT" "$MINKD_PORT" "$NGINX_PORT"; do
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null
done

rps() { wrk -t2 -c64 -d"$DURATION" "$1" | awk '/Requests\/sec/ {print $2}'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: > "$TMP/mink"; : > "$TMP/minkd"; : > "$TMP/nginx"; : > "$TMP/r1"; : > "$TMP/r2"
for round in $(seq "$ROUNDS"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    m=$(rps "http://127.0.0.1:$MINK_PORT/healthz")
    d=$(rps "http://127.0.0.1:$MINKD_PORT/healthz")
    n=$(rps "http://127.0.0.1:$NGINX_PORT/healthz")
    echo "$m" >> "$TMP/mink"; echo "$d" >> "$TMP/minkd"; echo "$n" >> "$TMP/nginx"
    awk -v m="$m" -v n="$n" 'BEGIN { print m / n }' >> "$TMP/r1"
    awk -v d="$d" -v n="$n" 'BEGIN { print d / n }' >> "$TMP/r2"
    printf 'round %d (load %s): MinkHTTP %s  minkd %s  nginx %s req/s\n' "$round" "$load" "$m" "$d" "$n"
done

echo
echo "medians of $ROUNDS rounds of wrk -t2 -c64 -d$DURATION (load average now: $(cut -d' ' -f1-3 /proc/loadavg)):"
echo "MinkHTTP example: $(median < "$TMP/mink") req/s"
echo "minkd:            $(median < "$TMP/minkd") req/s"
echo "nginx:            $(median < "$TMP/nginx") req/s"
printf 'ratio MinkHTTP/nginx: %.2fx (median of per-round ratios)\n' "$(median < "$TMP/r1")"
printf 'ratio minkd/nginx:    %.2fx (median of per-round ratios)\n' "$(median < "$TMP/r2")"
