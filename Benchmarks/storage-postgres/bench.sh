#!/usr/bin/env bash
# Builds the PostgreSQL storage benchmark in release mode and runs it against a throwaway server
# (scripts/with-postgres). MINK_PG_DURABLE=1 runs the server with fsync and synchronous_commit on.
#
#   Benchmarks/storage-postgres/bench.sh [seconds per run, default 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product PostgresBenchmark >/dev/null
scripts/with-postgres "$(swift build -c release --show-bin-path)/PostgresBenchmark" "${1:-3}"
