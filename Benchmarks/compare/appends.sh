#!/usr/bin/env bash
# Appends, minkd vs the storage engines underneath, in one run (issue 12's targets):
#   SQLite: single-event appends over HTTP (1, 64 clients) vs a C loop of one-insert transactions
#           (WAL, synchronous=FULL); 100-event appends with 16 clients.
#   PostgreSQL (fsync on): single-event appends (1, 64 clients) vs pgbench one-row INSERT
#           transactions (1, 64 clients); 100-event appends with 16 clients; two minkd processes on
#           one database, 32 clients each, vs one process with 64.
# Usage: Benchmarks/compare/appends.sh [seconds]   (MINKD, MINKD_BASE: see lib.sh)
. "$(dirname "$0")/lib.sh"
D=${1:-8}
need gcc gcc
gcc -O2 -o "$WORK/sqlite_insert" "$HERE/sqlite_insert.c" -lsqlite3
c_loop=$("$WORK/sqlite_insert" "$WORK/base.db" "$D")
echo "SQLite  C one-insert-per-transaction loop: $c_loop/s"
for i in "${!BINARIES[@]}"; do
  bin=${BINARIES[$i]}; label=${LABELS[$i]}
  start_minkd "$bin" "sqlite-$label" --storage sqlite
  s1=$(load append.lua 1 "$D" $MPORT); s64=$(load append.lua 64 "$D" $MPORT); b16=$(load append_batch.lua 16 "$D" $MPORT)
  stop_pid $MPID
  echo "SQLite  $label: 1 client $s1/s ($(ratio $s1 $c_loop)x C loop), 64 clients $s64/s ($(ratio $s64 $c_loop)x C loop); 100-event appends, 16 clients: $((b16 * 100)) events/s"
done
start_pg
psql -q -c "CREATE TABLE events(position bigserial primary key, stream_id text not null, version int not null, id uuid not null, type text not null, data jsonb not null, created_at timestamptz not null default now(), unique(stream_id, version))"
p1=$("$PGBIN/pgbench" -n -f "$HERE/pg_insert.sql" -c1 -j1 -T"$D" 2>&1 | awk '/tps = / {print int($3)}' | head -1)
p64=$("$PGBIN/pgbench" -n -f "$HERE/pg_insert.sql" -c64 -j2 -T"$D" 2>&1 | awk '/tps = / {print int($3)}' | head -1)
echo "PostgreSQL pgbench one-row INSERT transactions: 1 client $p1/s, 64 clients $p64/s"
for i in "${!BINARIES[@]}"; do
  bin=${BINARIES[$i]}; label=${LABELS[$i]}
  fresh_db "m_$label"
  start_minkd "$bin" "pg-$label" --storage postgres --database-url "$DBURL"; one=$MPORT; onepid=$MPID
  m1=$(load append.lua 1 "$D" $one); m64=$(load append.lua 64 "$D" $one); b16=$(load append_batch.lua 16 "$D" $one)
  echo "PostgreSQL $label: 1 client $m1/s ($(ratio $m1 $p1)x pgbench), 64 clients $m64/s ($(ratio $m64 $p64)x pgbench); 100-event appends, 16 clients: $((b16 * 100)) events/s"
  start_minkd "$bin" "pg2-$label" --storage postgres --database-url "$DBURL"; two=$MPORT
  load append.lua 32 "$D" $one >"$WORK/a" & la=$!
  load append.lua 32 "$D" $two >"$WORK/b"; wait $la
  both=$(( $(cat "$WORK/a") + $(cat "$WORK/b") ))
  stop_pid $MPID; stop_pid $onepid
  echo "PostgreSQL $label: two processes on one database, 32 clients each: $both/s together ($(ratio $both $m64)x one process with 64)"
done
