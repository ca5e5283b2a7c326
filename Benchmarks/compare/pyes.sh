#!/usr/bin/env bash
# minkd on PostgreSQL over HTTP vs py-eventsourcing (in-process) on the same PostgreSQL (fsync on):
# single-event appends, 1 and 16 writers. Installs eventsourcing[postgres] from PyPI if missing.
# Usage: Benchmarks/compare/pyes.sh [seconds]   (MINKD, MINKD_BASE: see lib.sh)
. "$(dirname "$0")/lib.sh"
D=${1:-8}
python3 -c "import eventsourcing, psycopg" 2>/dev/null || pip install -q "eventsourcing[postgres]"
start_pg
e1=$(python3 "$HERE/pyes_append.py" 1 "$D"); e16=$(python3 "$HERE/pyes_append.py" 16 "$D")
echo "py-eventsourcing: 1 writer $e1/s, 16 writers $e16/s"
for i in "${!BINARIES[@]}"; do
  bin=${BINARIES[$i]}; label=${LABELS[$i]}
  fresh_db "m_$label"
  start_minkd "$bin" "pg-$label" --storage postgres --database-url "$DBURL"
  m1=$(load append.lua 1 "$D" $MPORT); m16=$(load append.lua 16 "$D" $MPORT)
  stop_pid $MPID
  echo "minkd $label: 1 client $m1/s ($(ratio $m1 $e1)x), 16 clients $m16/s ($(ratio $m16 $e16)x)"
done
