#!/usr/bin/env bash
# What inline projections cost the append path (issue 13): single-event ItemAdded appends
# (wrk, 16 connections) with no projection declared, then with the three projections of
# projections.sh declared `mode: inline` (each append then also writes three documents in its
# transaction). SQLite and PostgreSQL (fsync on).
# Usage: Benchmarks/compare/inline-cost.sh [seconds] [sqlite|postgres|both]
#        (MINKD, MINKD_BASE: see lib.sh)
. "$(dirname "$0")/lib.sh"
SECS=${1:-10}
WHICH=${2:-both}
cat >"$WORK/inline3.yaml" <<YAML
projections:
  - name: orders
    mode: inline
    readModel: orders
    handlers:
      - event: OrderCreated
        id: "\$.data.orderId"
        set: { orderId: "\$.data.orderId", status: "pending", total: 0, itemCount: 0 }
      - event: ItemAdded
        id: "\$.data.orderId"
        increment: { itemCount: 1, total: "\$.data.price" }
  - name: skus
    mode: inline
    handlers:
      - event: ItemAdded
        id: "\$.data.sku"
        increment: { sold: 1, revenue: "\$.data.price" }
  - name: streams
    mode: inline
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
    for n in 0 3; do
      args=(--storage "$storage")
      if [ "$storage" = postgres ]; then fresh_db "i${n}_$label"; args+=(--database-url "$DBURL"); fi
      [ $n = 3 ] && args+=(--config "$WORK/inline3.yaml")
      start_minkd "$bin" "$storage-$label-$n" "${args[@]}"
      echo "$storage $label: $n inline projections: $(load item_append.lua 16 "$SECS" $MPORT) appends/s"
      stop_pid $MPID
    done
  done
done
