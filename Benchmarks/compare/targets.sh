#!/usr/bin/env bash
# Issue 12's targets as ratios that survive a noisy machine: every minkd figure is measured right
# after its reference, round after round, and each ratio is minkd's figure over the mean of the
# reference's run just before it and the one just after (so a drift of the VM's speed in between
# cancels out); the summary gives the median and the range of the rounds' ratios.
#   SQLite: single-event appends, 1 and 64 clients, vs the C loop of one-insert transactions (WAL,
#           synchronous=FULL)                                   targets: 64 clients >= 3x
#   PostgreSQL (fsync on): single-event appends, 1 and 64 clients, vs pgbench one-row INSERT
#           transactions                                          targets: 64 >= 1x, 1 >= 0.5x
#   py-eventsourcing on the same PostgreSQL, 1 and 16 writers (skipped when it is not installed
#           and PYES=install is not given)                        target: >= 5x at 1 and 16
#   two minkd processes on one database, 32 clients each, vs one with 64 (no reference: the two
#           are measured one after the other)                     target: >= 1x
#   100-event appends with 16 clients on both storages: events/s (no reference; the issue asks
#           for the figures, its anchors are go-mink's 30k events/s and Marten's 60-110k)
# One server per storage lives through all rounds (its tables grow, as the references' do).
# pgbench reaches PostgreSQL over the Unix socket, as in ../shared/perf (REF_TRANSPORT=tcp: over
# 127.0.0.1, the transport minkd is given); py-eventsourcing over TCP.
# Usage: Benchmarks/compare/targets.sh [seconds] [rounds]   (MINKD: see lib.sh; MINKD_BASE unused)
. "$(dirname "$0")/lib.sh"
D=${1:-3}; R=${2:-5}
need gcc gcc
gcc -O2 -o "$WORK/sqlite_insert" "$HERE/sqlite_insert.c" -lsqlite3
PYES=${PYES:-}
if ! python3 -c "import eventsourcing, psycopg" 2>/dev/null; then
  if [ "$PYES" = install ]; then pip install -q "eventsourcing[postgres]" || PYES=skip; else PYES=skip; fi
fi
start_pg
psql -q -c "CREATE TABLE events(position bigserial primary key, stream_id text not null, version int not null, id uuid not null, type text not null, data jsonb not null, created_at timestamptz not null default now(), unique(stream_id, version))"
PGB=("$PGBIN/pgbench" -n -f "$HERE/pg_insert.sql")
[ "${REF_TRANSPORT:-socket}" = tcp ] && PGB+=(-h 127.0.0.1)
pgbench_rate() { "${PGB[@]}" -c"$1" -j$(( $1 < 2 ? 1 : 2 )) -T"$D" 2>&1 | awk '/tps = / {print int($3)}' | head -1; }
c_loop() { rm -f "$WORK"/c-loop.db*; "$WORK/sqlite_insert" "$WORK/c-loop.db" "$D"; }   # a fresh file, as in ../shared/perf
pyes() { python3 "$HERE/pyes_append.py" "$1" "$D"; }

start_minkd "$MINKD" sqlite --storage sqlite; SQ=$MPORT
fresh_db pg_one; start_minkd "$MINKD" pg --storage postgres --database-url "$DBURL"; PG=$MPORT
fresh_db pg_two; start_minkd "$MINKD" pg-a --storage postgres --database-url "$DBURL"; TA=$MPORT
start_minkd "$MINKD" pg-b --storage postgres --database-url "$DBURL"; TB=$MPORT
for p in $SQ $PG $TA $TB; do load append.lua 16 1 $p >/dev/null; done   # warm-up: connections, statements

RES="$WORK/ratios"; : >"$RES"; : >"$WORK/events"
# measure NAME REF_CMD MINKD_CMD: reference, minkd, reference again; records minkd / mean(refs).
measure() {
  local name=$1 a m b
  a=$($2); m=$($3); b=$($2)
  local r; r=$(python3 -c "a,b,m=${a:-0},${b:-0},${m:-0}; print(round(2*m/(a+b), 3) if a+b else 0)")
  echo "$name $r" >>"$RES"
  printf '  %-26s minkd %6s/s  reference %6s/s and %6s/s  ratio %s\n' "$name" "$m" "$a" "$b" "$r"
}
for r in $(seq "$R"); do
  echo "round $r"
  measure "sqlite-1-client" c_loop "load append.lua 1 $D $SQ"
  measure "sqlite-64-clients" c_loop "load append.lua 64 $D $SQ"
  measure "postgres-1-client" "pgbench_rate 1" "load append.lua 1 $D $PG"
  measure "postgres-64-clients" "pgbench_rate 64" "load append.lua 64 $D $PG"
  if [ "$PYES" != skip ]; then
    measure "pyes-1-writer" "pyes 1" "load append.lua 1 $D $PG"
    measure "pyes-16-writers" "pyes 16" "load append.lua 16 $D $PG"
  fi
  one=$(load append.lua 64 "$D" $TA)
  load append.lua 32 "$D" $TA >"$WORK/a" & la=$!
  load append.lua 32 "$D" $TB >"$WORK/b"; wait $la
  both=$(( $(cat "$WORK/a") + $(cat "$WORK/b") ))
  tr=$(ratio $both $one); echo "two-processes $tr" >>"$RES"
  printf '  %-26s two %6s/s  one %6s/s  ratio %s\n' "two-processes" "$both" "$one" "$tr"
  for st in sqlite:$SQ postgres:$PG; do
    e=$(( $(load append_batch.lua 16 "$D" ${st#*:}) * 100 ))
    echo "${st%%:*}-100-event-appends $e" >>"$WORK/events"
    printf '  %-26s %s events/s\n' "${st%%:*}-100-event-appends" "$e"
  done
done
echo "summary over $R rounds of ${D}s (median, range; target):"
python3 - "$RES" <<'PY'
import sys, statistics
targets = {"sqlite-1-client": None, "sqlite-64-clients": 3.0, "postgres-1-client": 0.5, "postgres-64-clients": 1.0,
           "pyes-1-writer": 5.0, "pyes-16-writers": 5.0, "two-processes": 1.0}
got = {}
for line in open(sys.argv[1]):
    name, r = line.split(); got.setdefault(name, []).append(float(r))
for name, rs in got.items():
    med = statistics.median(rs); t = targets.get(name)
    verdict = "" if t is None else ("  target %.1fx: %s" % (t, "met" if med >= t else "not met"))
    print(f"  {name:26s} {med:.2f}x  ({min(rs):.2f}-{max(rs):.2f}){verdict}")
PY
python3 - "$WORK/events" <<'PY'
import sys, statistics
got = {}
for line in open(sys.argv[1]):
    name, e = line.split(); got.setdefault(name, []).append(int(e))
for name, es in got.items():
    print(f"  {name:26s} {int(statistics.median(es))} events/s  ({min(es)}-{max(es)})")
PY
