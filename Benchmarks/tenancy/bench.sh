#!/usr/bin/env bash
# Append throughput of the SQLite `shared` strategy: 100 tenants writing at once vs one tenant
# writing alone, same total load. Usage: Benchmarks/tenancy/bench.sh [appends per writer] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product TenancyBenchmark >/dev/null
"$(swift build -c release --show-bin-path)/TenancyBenchmark" "${1:-200}" "${2:-3}"
