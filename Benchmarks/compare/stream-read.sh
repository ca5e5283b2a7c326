#!/usr/bin/env bash
# Stream reads over HTTP (`GET /v1/streams/{id}`: a page of 20 events with the stream's version, as a
# client loading an aggregate reads it), 1 and 16 clients, and snapshots (`GET` and `PUT
# /v1/streams/{id}/snapshot`, 1 client), on SQLite and on PostgreSQL (fsync on: a snapshot PUT
# commits), rounds alternating the binaries when MINKD_BASE is set.
# Usage: Benchmarks/compare/stream-read.sh [seconds] [rounds]   (MINKD, MINKD_BASE: see lib.sh)
. "$(dirname "$0")/lib.sh"
D=${1:-5}; ROUNDS=${2:-2}
export STREAMS=100
start_pg
seed() {
  python3 - "$1" <<'PY'
import json, sys, urllib.request
port = sys.argv[1]
body = json.dumps({"events": [{"type": "Seeded", "data": {"n": i, "note": "a small payload"}} for i in range(20)]}).encode()
for s in range(100):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/streams/read-{s}", data=body, headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 201
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/streams/read-{s}/snapshot", data=b'{"version":20,"state":{"total":20}}',
                                 headers={"Content-Type": "application/json"}, method="PUT")
    assert urllib.request.urlopen(req).status == 200
PY
}
# measure BINARY NAME ARGS...: one minkd with ARGS, seeded; sets FIGURES to its four figures (not in
# a subshell: start_minkd records the process for the exit trap).
measure() {
  local bin=$1 name=$2; shift 2
  start_minkd "$bin" "$name" "$@"
  seed $MPORT
  load stream_read.lua 1 1 $MPORT >/dev/null
  local r1 r16 g p
  r1=$(load stream_read.lua 1 "$D" $MPORT); r16=$(load stream_read.lua 16 "$D" $MPORT)
  g=$(load snapshot_get.lua 1 "$D" $MPORT); p=$(load snapshot_put.lua 1 "$D" $MPORT)
  stop_pid $MPID
  FIGURES="stream reads 1 client $r1/s, 16 clients $r16/s, snapshot GET $g/s, PUT $p/s (1 client)"
}
for r in $(seq "$ROUNDS"); do
  for i in "${!BINARIES[@]}"; do
    label=${LABELS[$i]}
    measure "${BINARIES[$i]}" "sqlite-$label-$r" --storage sqlite; sqlite=$FIGURES
    fresh_db "read_${label}_$r"
    measure "${BINARIES[$i]}" "pg-$label-$r" --storage postgres --database-url "$DBURL"
    echo "round $r $label: SQLite $sqlite; PostgreSQL $FIGURES"
  done
done
