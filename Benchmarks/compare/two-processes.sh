#!/usr/bin/env bash
# Two minkd processes on one PostgreSQL (fsync on) vs one (issue 12): single-event appends, one
# process with 64 clients, then two processes with 32 clients each on the same database; prints
# both rates, their ratio and the appends per transaction of the two processes (how well the
# batches gathered).
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
# Batches = the distinct transaction IDs (xmin) of the rows the two processes wrote: one
# transaction per batch. pg_stat_database's xact_commit is not
# used: it also counts the transaction each listening backend runs per NOTIFY it delivers (with two
# processes, about two per batch) and flushes late.
head() { psql "$DBURL" -qAt -c "SELECT coalesce(max(position), 0) FROM mink_events"; }
per_batch() { psql "$DBURL" -qAt -c "SELECT round(count(*)::numeric / greatest(1, count(DISTINCT xmin::text)), 1) FROM mink_events WHERE position > $1"; }
for r in $(seq "$R"); do
  for i in "${!BINARIES[@]}"; do
    bin=${BINARIES[$i]}; label=${LABELS[$i]}
    fresh_db "two_${label}_$r"
    start_minkd "$bin" "one-$label-$r" --storage postgres --database-url "$DBURL"; one=$MPORT; onepid=$MPID
    m64=$(load append.lua 64 "$D" $one)
    start_minkd "$bin" "two-$label-$r" --storage postgres --database-url "$DBURL"; two=$MPORT
    h0=$(head)
    load append.lua 32 "$D" $one >"$WORK/a" & la=$!
    load append.lua 32 "$D" $two >"$WORK/b"; wait $la
    both=$(( $(cat "$WORK/a") + $(cat "$WORK/b") ))
    stop_pid $MPID; stop_pid $onepid
    echo "round $r $label: one process (64 clients) $m64/s, two processes (32 each) $both/s = $(ratio $both $m64)x; $(per_batch $h0) appends per transaction"
  done
done
