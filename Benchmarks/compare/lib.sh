# Shared by the comparison scripts: throwaway servers (PostgreSQL with fsync on, minkd), each
# stopped on exit. Sourced; run the scripts from anywhere.
# MINKD=/path/to/minkd overrides the binary (default: this checkout's release build, built if
# needed). MINKD_BASE=/path/to/other/minkd also measures that binary in the same run (before/after).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${MINKD:-}" ]; then
  (cd "$ROOT" && swift build -c release --product minkd >/dev/null 2>&1) || { echo "swift build -c release --product minkd failed" >&2; exit 1; }
  MINKD=$(cd "$ROOT" && swift build -c release --show-bin-path)/minkd
fi
BINARIES=("$MINKD"); LABELS=("new")
if [ -n "${MINKD_BASE:-}" ]; then BINARIES+=("$MINKD_BASE"); LABELS+=("base"); fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mink-compare.XXXXXX"); chmod 755 "$WORK"   # postgres must traverse it
PIDS=()
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ -d "$WORK/pg" ]; then (cd "$WORK" && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1); fi
  rm -rf "$WORK"
}
trap cleanup EXIT
need() { command -v "$1" >/dev/null || { echo "needs $1 (apt-get install $2)" >&2; exit 1; }; }
need wrk wrk; need python3 python3
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1${2:-/}" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; return 1; }
ratio() { python3 -c "print(round($1/$2,2) if $2 else 0)"; }
rps() { awk '/Requests\/sec/ {printf "%d\n", $2}'; }

# start_pg: PostgreSQL 15 with fsync and synchronous_commit on (PG_FSYNC=off turns both off, to see
# CPU and round trips without the disk, e.g. a lone append's latency); sets PGURL, PGHOST, PGPORT.
start_pg() {
  mkdir -p "$WORK/pg"; chown postgres: "$WORK/pg"
  PGPORT=$(freeport); PGHOST=$WORK/pg
  (cd "$WORK/pg" && runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null)
  (cd "$WORK/pg" && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w -t 60 \
     -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on} -c synchronous_commit=${PG_FSYNC:-on} -c max_connections=300 -c shared_buffers=512MB" start >/dev/null)
  runuser -u postgres -- "$PGBIN/createdb" -h "$PGHOST" -p "$PGPORT" -U postgres mink
  PGURL="postgresql://postgres@127.0.0.1:$PGPORT/mink"
  export PGHOST PGPORT PGUSER=postgres PGDATABASE=mink
}
# fresh_db NAME: a new empty database on the running cluster; sets DBURL.
fresh_db() { runuser -u postgres -- "$PGBIN/createdb" -h "$PGHOST" -p "$PGPORT" -U postgres "$1"; DBURL="postgresql://postgres@127.0.0.1:$PGPORT/$1"; }

# start_minkd BINARY NAME ARGS...: sets MPORT, MPID; logs to $WORK/NAME.log
start_minkd() {
  local bin=$1 name=$2; shift 2
  MPORT=$(freeport); mkdir -p "$WORK/$name"
  "$bin" serve --listen 127.0.0.1:$MPORT --data-dir "$WORK/$name" --log-level warning "$@" >"$WORK/$name.log" 2>&1 &
  MPID=$!; PIDS+=($MPID)
  waitport $MPORT /readyz || { cat "$WORK/$name.log" >&2; return 1; }
}
stop_pid() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# load SCRIPT CLIENTS SECONDS PORT: requests/s of wrk with that Lua script.
load() { local t=$(( $2 < 2 ? 1 : 2 )); wrk -t$t -c$2 -d${3}s -s "$HERE/$1" "http://127.0.0.1:$4" 2>"$WORK/wrk.err" | rps; }
