#!/usr/bin/env bash
# Two minkd processes on one PostgreSQL (fsync on) vs one (issue 12): single-event appends, one
# process with 64 clients, then two processes with 32 clients each on the same database; prints
# both rates, their ratio and the transactions PostgreSQL committed meanwhile (appends per
# transaction = how well the batches gathered).
# Usage: Benchmarks/compare/two-processes.sh [seconds] [rounds]
#        PG_COMMIT_DELAY=2000 (µs) emulates a slow flush (commit_delay, commit_siblings = 0): the
#        regime of a network volume, where the commits rather than the CPU are the limit.
#        (MINKD, MINKD_BASE: see lib.sh; with MINKD_BASE the binaries alternate.)
. "$(dirname "$0")/lib.sh"
D=${1:-5}; R=${2:-1}
start_pg
if [ -n "${PG_COMMIT_DELAY:-}" ]; then
  psql -qAt -c "ALTER SYSTEM SET commit_delay = $PG_COMMIT_DELAY" -c "ALTER SYSTEM SET commit_siblings = 0" -c "SELECT pg_reload_conf()" >/dev/null
fi
commits() { psql "$DBURL" -qAt -c "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }
for r in $(seq "$R"); do
  for i in "${!BINARIES[@]}"; do
    bin=${BINARIES[$i]}; label=${LABELS[$i]}
    fresh_db "two_${label}_$r"
    start_minkd "$bin" "one-$label-$r" --storage postgres --database-url "$DBURL"; one=$MPORT; onepid=$MPID
    m64=$(load append.lua 64 "$D" $one)
    start_minkd "$bin" "two-$label-$r" --storage postgres --database-url "$DBURL"; two=$MPORT
    x0=$(commits)
    load append.lua 32 "$D" $one >"$WORK/a" & la=$!
    load append.lua 32 "$D" $two >"$WORK/b"; wait $la
    x1=$(commits)
    both=$(( $(cat "$WORK/a") + $(cat "$WORK/b") ))
    stop_pid $MPID; stop_pid $onepid
    echo "round $r $label: one process (64 clients) $m64/s, two processes (32 each) $both/s = $(ratio $both $m64)x; $(python3 -c "print(round($both * $D / max(1, $x1 - $x0), 1))") appends per transaction"
  done
done
