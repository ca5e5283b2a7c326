#!/usr/bin/env bash
# Projections at storage speed (issue 13): an async projection (the orders projection of
# ../shared/perf/p7-projection.sh: one `set` and nine `increment` handlers per order) catching up
# over N stored events, then a rebuild of it (reads answering from the old copy meanwhile), on
# SQLite and on PostgreSQL with fsync on. The events are appended with no projection declared,
# then minkd is restarted with it, so the catch-up is measured alone.
# Then, on a fresh database with three projections declared, append 201 -> visible in the read
# model (median, p99) while wrk appends about RATE events/s in the background, measured by a
# client that polls the read model, and by the server itself (mink_projection_delay_seconds on
# /metrics: each event's append -> the commit of the batch that applied it, for each projection).
# Usage: Benchmarks/compare/projections.sh [events] [sqlite|postgres|both] [rate] [seconds]
#        (LIVE_ROUNDS=N: N live rounds, each on a fresh database)
#        (MINKD, MINKD_BASE: see lib.sh; MINKD_BASE measures an older binary in the same run)
. "$(dirname "$0")/lib.sh"
N=${1:-100000}
WHICH=${2:-both}
RATE=${3:-1000}
SECONDS_LIVE=${4:-10}
cat >"$WORK/proj.yaml" <<YAML
projections:
  - name: orders
    mode: async
    readModel: orders
    handlers:
      - event: OrderCreated
        id: "\$.data.orderId"
        set: { orderId: "\$.data.orderId", status: "pending", total: 0, itemCount: 0 }
      - event: ItemAdded
        id: "\$.data.orderId"
        increment: { itemCount: 1, total: "\$.data.price" }
YAML
cp "$WORK/proj.yaml" "$WORK/proj3.yaml"
cat >>"$WORK/proj3.yaml" <<YAML
  - name: skus
    mode: async
    handlers:
      - event: ItemAdded
        id: "\$.data.sku"
        increment: { sold: 1, revenue: "\$.data.price" }
  - name: streams
    mode: async
    handlers:
      - event: ItemAdded
        id: "\$.streamId"
        set: { lastSku: "\$.data.sku", at: "\$.timestamp" }
        increment: { n: 1 }
YAML
storages=(sqlite postgres); [ "$WHICH" = both ] || storages=("$WHICH")
for storage in "${storages[@]}"; do
  if [ "$storage" = postgres ] && [ -z "${PGURL:-}" ]; then start_pg; fi
  for i in "${!BINARIES[@]}"; do
    bin=${BINARIES[$i]}; label=${LABELS[$i]}
    args=(--storage "$storage")
    if [ "$storage" = postgres ]; then fresh_db "p_$label"; args+=(--database-url "$DBURL"); fi
    start_minkd "$bin" "$storage-$label" "${args[@]}"
    python3 "$HERE/projections.py" $MPORT load "$N" >/dev/null
    stop_pid $MPID
    MPORT=$(freeport); T0=$(date +%s.%N)
    "$bin" serve --listen 127.0.0.1:$MPORT --data-dir "$WORK/$storage-$label" --log-level warning --config "$WORK/proj.yaml" "${args[@]}" \
      >"$WORK/$storage-$label-p.log" 2>&1 &
    MPID=$!; PIDS+=($MPID); waitport $MPORT /readyz
    echo "$storage $label: $(python3 "$HERE/projections.py" $MPORT catchup "$T0")"
    echo "$storage $label: $(python3 "$HERE/projections.py" $MPORT rebuild)"
    stop_pid $MPID
    # LIVE_ROUNDS rounds (default 1), each on a fresh database: the p99 of one 10-second probe
    # swings with the machine's other load, so several rounds say more than one.
    for round in $(seq "${LIVE_ROUNDS:-1}"); do
      if [ "$storage" = postgres ]; then fresh_db "l_${label}_$round"; args=(--storage postgres --database-url "$DBURL"); fi
      start_minkd "$bin" "$storage-$label-live-$round" "${args[@]}" --config "$WORK/proj3.yaml"
      # Background appends paced by wrk (10 connections, each waiting DELAY_MS between appends,
      # less the ~2 ms an append takes: about RATE/s), the probe's own appends (~100/s) on top.
      DELAY_MS=$(( 10 * 1000 / RATE > 3 ? 10 * 1000 / RATE - 2 : 1 )) wrk -t2 -c10 -d"${SECONDS_LIVE}s" -s "$HERE/item_append.lua" "http://127.0.0.1:$MPORT" \
        >"$WORK/wrk-live.txt" 2>&1 &
      W=$!
      probe=$(python3 "$HERE/projections.py" $MPORT probe "$SECONDS_LIVE")
      wait $W
      echo "$storage $label: live, background $(rps <"$WORK/wrk-live.txt") appends/s (wrk, paced for $RATE/s); $probe"
      # The server's own measure of the same round, for binaries that record it.
      echo "$storage $label: $(python3 "$HERE/projections.py" $MPORT delay)"
      stop_pid $MPID
    done
  done
done
