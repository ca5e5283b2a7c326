#!/usr/bin/env bash
# Builds the libFuzzer harness for HTTPRequestParser and runs it for N seconds
# (default 600) with the conformance vectors as the seed corpus.
# Usage: Fuzz/run.sh [seconds] [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN="${1:-600}"
shift || true
swift build -c release -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld
BIN="$(swift build -c release -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld --show-bin-path)/FuzzHTTPParser"
CORPUS="${CORPUS:-$PWD/.corpus}"
SEEDS="$PWD/.seeds"
mkdir -p "$CORPUS" "$SEEDS" "$PWD/.artifacts"
python3 - "$SEEDS" <<'PY'
import base64, json, sys, os
d = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "..", "Tests", "MinkHTTPTests", "Resources", "http_requests.json")))
for i, r in enumerate(d):
    open(os.path.join(sys.argv[1], "vector-%02d" % i), "wb").write(base64.b64decode(r["raw"]))
PY
export SWIFT_BACKTRACE=enable=no
exec "$BIN" "$CORPUS" "$SEEDS" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 \
    -artifact_prefix="$PWD/.artifacts/" -print_final_stats=1 "$@"
