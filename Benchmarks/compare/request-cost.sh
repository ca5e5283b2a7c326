#!/usr/bin/env bash
# CPU and context switches per single-event append on PostgreSQL (fsync on): minkd's CPU (user +
# system), its threads' context switches and PostgreSQL's backends' CPU, read from /proc around a
# wrk run — steadier than appends/s on a VM whose speed swings between runs. With MINKD_BASE the
# binaries alternate, ROUNDS times.
# Usage: Benchmarks/compare/request-cost.sh [seconds] [clients] [rounds]   (MINKD, MINKD_BASE: see lib.sh)
. "$(dirname "$0")/lib.sh"
D=${1:-5}; C=${2:-1}; ROUNDS=${3:-2}
T=$(( C < 2 ? 1 : 2 ))
start_pg
cs() { cat /proc/$1/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s+=$2} END {print s}'; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
pgcpu() { for p in $(pgrep -u postgres postgres); do awk '{print $14+$15}' /proc/$p/stat 2>/dev/null; done | awk '{s+=$1} END {print s}'; }
hz=$(getconf CLK_TCK)
for r in $(seq "$ROUNDS"); do
  for i in "${!BINARIES[@]}"; do
    fresh_db "cost_${LABELS[$i]}_$r"
    start_minkd "${BINARIES[$i]}" "cost-${LABELS[$i]}-$r" --storage postgres --database-url "$DBURL"
    curl -fsS -o /dev/null -H 'Content-Type: application/json' -d '{"events":[{"type":"Warm","data":{}}]}' "http://127.0.0.1:$MPORT/v1/streams/warm-1"
    c0=$(cs $MPID); t0=$(cpu $MPID); g0=$(pgcpu)
    out=$(wrk -t$T -c$C -d${D}s -s "$HERE/append.lua" "http://127.0.0.1:$MPORT")
    c1=$(cs $MPID); t1=$(cpu $MPID); g1=$(pgcpu)
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rate=$(echo "$out" | rps)
    python3 -c "n=$n; print(f'round $r ${LABELS[$i]}: $C clients {int($rate)}/s, minkd {($t1-$t0)*1e6/$hz/n:.0f} µs CPU and {($c1-$c0)/n:.2f} context switches per append, PostgreSQL {($g1-$g0)*1e6/$hz/n:.0f} µs CPU')"
    stop_pid $MPID
  done
done
