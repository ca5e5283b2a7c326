#!/usr/bin/env bash
# Issue 15: what a per-token rate limit that is never reached costs. Authenticated single-event
# appends (in-memory storage, so that the disk hides nothing) and GET /v1/events/head, wrk -t2
# -c64, alternating rounds, medians: the new minkd with the token's `rateLimit` configured (far
# above the load) vs the same token without a limit, and MINKD_BASE (an older minkd, without
# rate limits) with the same token. Run from the project's root; quiet machine only.
# Usage: Benchmarks/ratelimit/bench.sh [seconds] [rounds]   (MINKD, MINKD_BASE as in shared/perf/lib.sh)
. "${PERF:-/work/shared/perf}/lib.sh"
D=${1:-6}; R=${2:-3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export MINK_TOKEN="bench-$RANDOM$RANDOM"
HASH=$(printf '%s\n' "$MINK_TOKEN" | "$MINKD" hash-token)
config() {  # config NAME [rateLimit line]
  cat >"$WORK/$1.yaml" <<YAML
auth:
  enabled: true
  tokens:
    - name: "bench"
      sha256: "$HASH"
      tenant: "*"
      roles: [read, write]
$2
YAML
}
config nolimit ""
config limit "      rateLimit: { perSecond: 100000000, burst: 100000000 }"
run() {  # run LABEL BINARY CONFIG -> prints "appends head"
  local bin=$1 cfg=$2
  MINKD_SAVED=$MINKD; MINKD=$bin
  start_minkd "r$RANDOM" --storage memory --config "$WORK/$cfg.yaml"
  MINKD=$MINKD_SAVED
  wrk -t1 -c8 -d1s -s "$HERE/head_auth.lua" http://127.0.0.1:$MPORT >/dev/null
  local a h
  a=$(wrk -t2 -c64 -d${D}s -s "$HERE/append_auth.lua" http://127.0.0.1:$MPORT | rps)
  h=$(wrk -t2 -c64 -d${D}s -s "$HERE/head_auth.lua" http://127.0.0.1:$MPORT | rps)
  stop_pid $MPID
  echo "$a $h"
}
declare -A A H
labels=(${ORDER:-limit nolimit})
[ -n "${MINKD_BASE:-}" ] && labels+=(base)
for i in $(seq $R); do
  for l in "${labels[@]}"; do
    case $l in
      limit) r=$(run "$MINKD" limit) ;;
      nolimit) r=$(run "$MINKD" nolimit) ;;
      base) r=$(run "$MINKD_BASE" nolimit) ;;
    esac
    A[$l]+="${r% *} "; H[$l]+="${r#* } "
  done
done
for l in "${labels[@]}"; do
  echo "$l: appends/s ${A[$l]}(median $(printf '%s\n' ${A[$l]} | median)); head req/s ${H[$l]}(median $(printf '%s\n' ${H[$l]} | median))"
done
