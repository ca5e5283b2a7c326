#!/usr/bin/env bash
# Builds the stream-listing benchmark (release) and runs it on SQLite and/or on a throwaway
# PostgreSQL (scripts/with-postgres; MINK_PG_DURABLE=1 keeps fsync on). See the source,
# Benchmarks/streams/Sources/StreamListBenchmark/main.swift, for what it prints.
#
#   Benchmarks/streams/bench.sh [streams] [sqlite|postgres|both] [page size]
#   (defaults: 1000000 streams, sqlite, pages of 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
KIND=${2:-sqlite}
PAGE=${3:-1000}
swift build -c release --product StreamListBenchmark >/dev/null
BIN="$(swift build -c release --show-bin-path)/StreamListBenchmark"
if [ "$KIND" = sqlite ] || [ "$KIND" = both ]; then "$BIN" "$N" sqlite "$PAGE"; fi
if [ "$KIND" = postgres ] || [ "$KIND" = both ]; then scripts/with-postgres "$BIN" "$N" postgres "$PAGE"; fi
