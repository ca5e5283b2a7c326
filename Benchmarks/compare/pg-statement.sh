#!/usr/bin/env bash
# Where a lone append's time goes on PostgreSQL (fsync on), one client, rounds alternating:
#   insert  pgbench, one-row INSERT transactions (the issue-12 reference, pg_insert.sql)
#   stmt    pgbench running minkd's own append transaction on minkd's schema, pipelined as minkd
#           sends it (BEGIN, the tenant's advisory lock, Statements.appendOne, COMMIT in one round
#           trip; prepared) -- what PostgreSQL alone needs for one append of one event
#   minkd   single-event appends over HTTP (wrk, append.lua)
# The difference between `stmt` and `minkd` is what minkd adds (HTTP, JSON, its threads); the one
# between `insert` and `stmt` is the event store's own write (five indexes on the events table, the
# streams row, the head read, the lock, the NOTIFY).
# Usage: Benchmarks/compare/pg-statement.sh [seconds] [rounds]   (MINKD: see lib.sh)
# The statement is a copy of Statements.appendOne (Sources/MinkPostgres/Statements.swift) with
# pgbench variables in place of the parameters: keep the two alike.
. "$(dirname "$0")/lib.sh"
D=${1:-5}; ROUNDS=${2:-3}
start_pg
psql -q -c "CREATE TABLE events(position bigserial primary key, stream_id text not null, version int not null, id uuid not null, type text not null, data jsonb not null, created_at timestamptz not null default now(), unique(stream_id, version))"
fresh_db m
start_minkd "$MINKD" pg --storage postgres --database-url "$DBURL"
curl -fsS -o /dev/null -H 'Content-Type: application/json' -d '{"events":[{"type":"Warm","data":{}}]}' "http://127.0.0.1:$MPORT/v1/streams/warm-1"
KEY=$(psql -d m -Atc "SELECT 12345")   # any key: one client, nobody else takes it
cat >"$WORK/stmt.sql" <<SQL
\\set n random(1, 10000)
\\startpipeline
BEGIN;
SELECT pg_advisory_xact_lock($KEY);
WITH c AS MATERIALIZED (
    SELECT coalesce((SELECT position FROM mink_events WHERE tenant_id = 'default' ORDER BY position DESC LIMIT 1), 0) AS head,
           s.version, s.deleted
    FROM (SELECT 1) AS one LEFT JOIN mink_streams s ON s.tenant_id = 'default' AND s.stream_id = 'pgb-' || :n),
ok AS MATERIALIZED (SELECT coalesce(c.deleted, 0) = 0 AS ok FROM c),
ins AS (
    INSERT INTO mink_events (tenant_id, stream_id, category, created_at, position, version, event_id, type, data, metadata)
    SELECT 'default', 'pgb-' || :n, 'pgb', now(), c.head + r.j, coalesce(c.version, 0) + r.j, r.id, r.type, r.data, r.metadata
    FROM unnest(ARRAY[gen_random_uuid()::text], ARRAY['Benchmarked'], ARRAY['{"n":1,"note":"a small payload"}'::bytea], ARRAY['{}'])
         WITH ORDINALITY AS r(id, type, data, metadata, j)
    CROSS JOIN c CROSS JOIN ok WHERE ok.ok
    RETURNING position, version),
st AS (
    INSERT INTO mink_streams (tenant_id, stream_id, version, created_at, updated_at)
    SELECT 'default', 'pgb-' || :n, coalesce(c.version, 0) + 1, now(), now() FROM c CROSS JOIN ok WHERE ok.ok
    ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
    RETURNING 1),
nt AS (SELECT pg_notify('mink_commits', 'pgbench') FROM ok WHERE ok.ok)
SELECT c.head, c.version, c.deleted, ok.ok, (SELECT count(*) FROM ins), (SELECT count(*) FROM st), (SELECT count(*) FROM nt)
FROM c CROSS JOIN ok;
COMMIT;
\\endpipeline
SQL
tps() { awk '/tps = / {print int($3)} /ERROR|aborted/ {print > "/dev/stderr"}' | head -1; }
us() { python3 -c "print(round(1e6/$1) if $1 else 0)"; }
for r in $(seq "$ROUNDS"); do
  i=$("$PGBIN/pgbench" -n -f "$HERE/pg_insert.sql" -c1 -j1 -T"$D" 2>&1 | tps)
  s=$("$PGBIN/pgbench" -n -M prepared -f "$WORK/stmt.sql" -c1 -j1 -T"$D" m 2>&1 | tps)
  m=$(load append.lua 1 "$D" "$MPORT")
  echo "round $r: insert $i/s ($(us $i) µs), minkd's statement $s/s ($(us $s) µs, $(ratio $s $i)x insert), minkd over HTTP $m/s ($(us $m) µs, $(ratio $m $i)x insert, $(ratio $m $s)x its statement)"
done
