#!/usr/bin/env bash
# Export memory benchmark (issue 14): builds a SQLite log of N events by piping generated NDJSON
# into `minkd import` (import from a pipe), then exports it twice — `minkd export` on the storage
# and `GET /v1/admin/export` from a serving minkd — and reports each process's peak RSS
# (VmHWM) next to its RSS after the first 5% of the export, plus the time taken, and the RSS over
# time (about a dozen samples, evenly spaced over the export, "seconds:MiB").
# Constant memory means the peak does not grow with N: compare runs with different N.
#
#   Benchmarks/export/bench.sh [events] [streams]       (defaults: 1000000 events, 10000 streams)
#   MINKD=/path/to/minkd Benchmarks/export/bench.sh     (default: .build/release/minkd, else debug)
set -euo pipefail
N=${1:-1000000}
STREAMS=${2:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MINKD=${MINKD:-$ROOT/.build/release/minkd}
[ -x "$MINKD" ] || MINKD=$ROOT/.build/debug/minkd
WORK=$(mktemp -d /tmp/minkd-export-bench.XXXXXX)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
SERVER=""
echo "minkd: $MINKD; $N events in $STREAMS streams; work dir $WORK" >&2

# Peak and sampled RSS of a running PID, polled every 0.2 s until it exits (or is killed): one
# line per sample, "t=SECONDS VmRSS: KIB VmHWM: KIB".
watch_rss() {
    local pid=$1 out=$2 start
    start=$(date +%s.%N)
    : > "$out"
    while kill -0 "$pid" 2>/dev/null; do
        { printf 't=%s ' "$(echo "$(date +%s.%N) - $start" | bc)"; awk '/VmRSS|VmHWM/ {printf "%s %s ", $1, $2} END {print ""}' "/proc/$pid/status" 2>/dev/null; } >> "$out" || true
        sleep 0.2
    done
}

# About a dozen evenly spaced samples of a watch_rss file: "seconds:MiB ...".
rss_series() {
    awk '/VmRSS/ { for (i = 1; i <= NF; i++) { if ($i ~ /^t=/) t[NR] = substr($i, 3); if ($i == "VmRSS:") r[NR] = $(i + 1) } n = NR }
         END { step = int(n / 12); if (step < 1) step = 1
               for (i = 1; i <= n; i += step) if (i in r) printf "%.0fs:%.1f ", t[i], r[i] / 1024
               if (n in r) printf "%.0fs:%.1f", t[n], r[n] / 1024 }' "$1"
}

t0=$(date +%s.%N)
python3 - "$N" "$STREAMS" <<'PY' | "$MINKD" import --data-dir "$WORK/data" > "$WORK/import.json"
import sys, uuid
n, streams = int(sys.argv[1]), int(sys.argv[2])
versions = [0] * streams
out = sys.stdout
buf = []
for p in range(1, n + 1):
    s = p % streams
    versions[s] += 1
    buf.append('{"id":"%s","streamId":"order-%d","type":"OrderPlaced","data":{"orderId":"o-%d","total":%d,"note":"some text to give the event a realistic size"},"metadata":{"correlationId":"c-%d"},"version":%d,"globalPosition":%d,"timestamp":"2026-12-05T10:00:00.%06dZ"}\n'
               % (uuid.uuid4(), s, p, p % 997, p, versions[s], p, p % 1000000))
    if len(buf) == 10000:
        out.write("".join(buf)); buf = []
out.write("".join(buf))
PY
t1=$(date +%s.%N)
echo "import: $(cat "$WORK/import.json") in $(echo "$t1 - $t0" | bc) s; data dir $(du -sh "$WORK/data" | cut -f1)" >&2

# 1. minkd export on the storage.
t0=$(date +%s.%N)
"$MINKD" export --data-dir "$WORK/data" > /dev/null 2> "$WORK/export.err" &
PID=$!
watch_rss $PID "$WORK/cli.rss" &
WATCH=$!
wait $PID
wait $WATCH || true
t1=$(date +%s.%N)
peak=$(grep -o 'VmHWM: [0-9]*' "$WORK/cli.rss" | tail -1 | awk '{print $2}')
early=$(grep -o 'VmRSS: [0-9]*' "$WORK/cli.rss" | awk 'NR==2{print $2}')
echo "minkd export: $(cat "$WORK/export.err" | tail -1); $(echo "$t1 - $t0" | bc) s; RSS early ${early:-?} KiB, peak ${peak:-?} KiB" >&2
echo "  RSS over time (s:MiB): $(rss_series "$WORK/cli.rss")" >&2

# 2. GET /v1/admin/export from a serving minkd (gzip off, then on).
"$MINKD" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 --log-format json 2> "$WORK/serve.log" &
SERVER=$!
for _ in $(seq 1 100); do grep -q "minkd ready" "$WORK/serve.log" && break; sleep 0.1; done
PORT=$(grep -o '"address":"127.0.0.1:[0-9]*' "$WORK/serve.log" | grep -o '[0-9]*$')
idle=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
for enc in identity gzip; do
    watch_rss $SERVER "$WORK/http-$enc.rss" &
    WATCH=$!
    t0=$(date +%s.%N)
    bytes=$(curl -s -H "Accept-Encoding: $enc" "http://127.0.0.1:$PORT/v1/admin/export?after=0" | wc -c)
    t1=$(date +%s.%N)
    kill $WATCH 2>/dev/null || true
    max=$(grep -o 'VmRSS: [0-9]*' "$WORK/http-$enc.rss" | awk '{print $2}' | sort -n | tail -1)
    echo "GET /v1/admin/export ($enc): $bytes bytes in $(echo "$t1 - $t0" | bc) s; minkd RSS idle $idle KiB, max during export ${max:-?} KiB" >&2
    echo "  RSS over time (s:MiB): $(rss_series "$WORK/http-$enc.rss")" >&2
done
kill $SERVER
wait $SERVER 2>/dev/null || true
SERVER=""
