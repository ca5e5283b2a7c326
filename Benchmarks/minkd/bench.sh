#!/usr/bin/env bash
# minkd benchmarks (issue 4): single-event appends/s on SQLite with 1 and 64 concurrent
# clients, and resident memory idle and with 1,000 open SSE subscribers.
# Usage: Benchmarks/minkd/bench.sh [seconds]   (needs wrk and python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
swift build -c release --product minkd >/dev/null
bin=$(swift build -c release --show-bin-path)/minkd
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
"$bin" serve --listen 127.0.0.1:$port --data-dir "$dir" --log-level warning --log-format json 2>"$dir/minkd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }

echo "== resident memory idle: $(rss) KiB"
for c in 1 64; do
  t=$(( c < 2 ? 1 : 2 ))
  out=$(wrk -t$t -c$c -d${secs}s -s Benchmarks/minkd/append.lua "http://127.0.0.1:$port" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  lat=$(echo "$out" | awk '/Latency/ {print $2}')
  errs=$(echo "$out" | grep -c "unexpected status" || true)
  echo "== SQLite single-event appends, $c client(s): $rps appends/s (mean latency $lat, non-201: $errs)"
done
echo "== events stored: $(curl -s "http://127.0.0.1:$port/v1/events/head")"

coproc SSE { python3 Benchmarks/minkd/sse_clients.py $port 1000; }
read -r line <&"${SSE[0]}"
echo "== $line subscribers; resident memory: $(rss) KiB"
curl -s -X POST "http://127.0.0.1:$port/v1/streams/bench-live" -H 'Content-Type: application/json' \
  -d '{"events":[{"type":"Live","data":{}}]}' >/dev/null
sleep 1
echo "== after one live event fanned out to 1,000 subscribers: $(rss) KiB"
eval "exec ${SSE[1]}>&-"
wait $SSE_PID 2>/dev/null || true
