#!/usr/bin/env bash
# Soak (issue 17): minkd on SQLite for MINUTES (default 30) at half the measured append capacity,
# with 50 SSE subscribers, printing per minute the p99 append latency, minkd's RSS and the WAL
# size (to tell minkd's drift — WAL growth, checkpoints, the hub — from the generator's).
# The load generator (MinkSoak, this folder) is open-loop and multi-threaded Swift, not Python.
# Run it on a quiet machine only (check `uptime`): it measures.
# Usage: Benchmarks/soak/soak.sh [minutes] [subscribers]
set -euo pipefail
cd "$(dirname "$0")"
MINUTES="${1:-30}"
SUBS="${2:-50}"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
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
# Capacity: 64 connections, closed loop, 20 s (the same script as Benchmarks/minkd).
CAP=$(wrk -t2 -c64 -d20s -s ../minkd/append.lua "http://127.0.0.1:$PORT" 2>&1 | awk '/Requests\/sec/ {print int($2)}')
# SOAK_RATE overrides: half the capacity *without* subscribers overloads minkd once 50
# subscribers each receive every event (a 2026-12-05 run at 2,316/s fell behind in minute 1).
RATE=${SOAK_RATE:-$((CAP / 2))}
echo "== measured capacity: $CAP appends/s; soak rate: $RATE appends/s for $MINUTES min with $SUBS subscribers"
"$SOAK" "$PORT" "$RATE" "$MINUTES" "$SUBS" "$PID" "$DIR/mink.sqlite-wal"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
