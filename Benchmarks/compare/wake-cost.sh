#!/usr/bin/env bash
# What one thread hand-off (a wake-up through the kernel) costs on this machine — the unit a lone
# request pays several times over (HTTP loop -> connection queue -> PostgreSQL -> back; pgbench pays
# two per transaction). Round trips of a token between two threads (Benchmarks/compare/wake_cost.c):
# both threads on one CPU, on any CPUs with both busy, and with the peer's CPU left idle for 300 µs
# before each round trip (a VM whose idle vCPUs halt pays the hypervisor's wake-up there).
# Usage: Benchmarks/compare/wake-cost.sh [rounds]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
R=${1:-3}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
gcc -O2 -pthread -o "$WORK/wake_cost" "$HERE/wake_cost.c"
echo "halt polling in the guest: $(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null || echo n/a) ns; cpuidle driver: $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo n/a)"
for r in $(seq "$R"); do
  same=$(taskset -c 0 "$WORK/wake_cost" 20000 0)
  hot=$("$WORK/wake_cost" 20000 0)
  idle=$("$WORK/wake_cost" 3000 300)
  echo "round $r: round trip (two hand-offs) one CPU $same µs, any CPUs $hot µs, peer's CPU idle 300 µs before $idle µs"
done
