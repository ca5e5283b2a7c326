#!/usr/bin/env bash
# Soak (issue 17): minkd on SQLite for MINUTES (default 30) at half the measured append capacity,
# with 50 SSE subscribers, printing per minute the completed appends, errors, late and outstanding
# requests, the p99 append latency, minkd's RSS, the WAL size, minkd's head and the slowest
# subscriber's lag (to tell minkd's drift — WAL growth, checkpoints, the hub — from the generator's).
# Capacity is measured *with the subscribers attached* (MinkSoak capacity: 64 connections, closed
# loop, 20 s; the lower of the append rate and the slowest subscriber's receive rate): measured
# without them, half of it overloaded minkd once 50 subscribers each received every event.
# The load generator (MinkSoak, this folder) is open-loop and multi-threaded Swift, not Python.
# Run it on a quiet machine only (check `uptime`): it measures. SOAK_RATE=N skips the capacity
# run and soaks at N appends/s.
# Usage: Benchmarks/soak/soak.sh [minutes] [subscribers]
set -euo pipefail
cd "$(dirname "$0")"
MINUTES="${1:-30}"
SUBS="${2:-50}"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd ../.. && swift build -c release --product MinkSoak >/dev/null)
SOAK="$(cd ../.. && swift build -c release --show-bin-path)/MinkSoak"
(cd ../.. && swift build -c release --product minkd >/dev/null)
MINKD="$(cd ../.. && swift build -c release --show-bin-path)/minkd"
DIR=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
ulimit -n 4096 2>/dev/null || true
"$MINKD" serve --listen 127.0.0.1:$PORT --data-dir "$DIR" --log-level warning --log-format json 2>"$DIR/minkd.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
if [ -z "${SOAK_RATE:-}" ]; then
    CAP=$("$SOAK" capacity "$PORT" 20 "$SUBS" 64 | tee /dev/stderr | awk '/^CAPACITY/ {print $2}')
    RATE=$((CAP / 2))
    echo "== measured capacity with $SUBS subscribers: $CAP appends/s; soak rate: $RATE appends/s for $MINUTES min"
else
    RATE=$SOAK_RATE
    echo "== soak rate (SOAK_RATE): $RATE appends/s for $MINUTES min with $SUBS subscribers"
fi
"$SOAK" run "$PORT" "$RATE" "$MINUTES" "$SUBS" "$PID" "$DIR/mink.sqlite-wal"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
