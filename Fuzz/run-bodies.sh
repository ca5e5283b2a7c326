#!/usr/bin/env bash
# Builds the libFuzzer harness for the request-body decoders (Sources/FuzzBodies: JSONReader,
# AppendBody, ReadModelQueryBody, NDJSONImportReader) and runs it for N seconds (default 600).
# An input's first byte picks the decoder (byte % 4); the seeds below carry it.
# Usage: Fuzz/run-bodies.sh [seconds] [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN="${1:-600}"
shift || true
FLAGS=(-c release -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld)
swift build "${FLAGS[@]}" --product FuzzBodies
BIN="$(swift build "${FLAGS[@]}" --show-bin-path)/FuzzBodies"
CORPUS="${CORPUS:-$PWD/.corpus-bodies}"
SEEDS="$PWD/.seeds-bodies"
mkdir -p "$CORPUS" "$SEEDS" "$PWD/.artifacts"
python3 - "$SEEDS" <<'PY'
import os, sys
d = sys.argv[1]
line = ('{"id":"0f8fad5b-d9cb-469f-a165-70867728950%d","streamId":"%s","type":"T","data":{"p":%d},'
        '"metadata":{"custom":{"k":"v"}},"version":%d,"globalPosition":%d,"timestamp":"2026-12-05T10:00:00.000001Z"}')
seeds = {
    0: ['{"a":[1,-2.5e10,true,false,null],"b":{"c":"\\u00e9\\ud83d\\ude00\\n"}}', '[[[]],{}, "x" , 0]', '-0.0e-0', '"\u00e9\u4e2d"'],
    1: ['{"events":[{"type":"ItemAdded","data":{"sku":"A","qty":2}}]}',
        '{"expectedVersion":3,"metadata":{"correlationId":"c1","custom":{"k":"v"}},"events":['
        '{"id":"0F8FAD5B-D9CB-469F-A165-70867728950E","type":"ItemAdded","data": { "a" : [1, 2] },"metadata":{"causationId":"x"}},'
        '{"type":"ItemRemoved","data":"\\u00e9"}]}',
        '{"expectedVersion":"no_stream","events":[{"type":"T","data":null}]}',
        '{"expectedVersion":"stream_exists","events":[{"type":"T","data":[]}]}'],
    2: ['{"where":[[{"field":"status","op":"=","value":"pending"},{"field":"total","op":">","value":100}],'
        '[{"field":"priority","op":"in","value":["high","urgent"]}]],"orderBy":[{"field":"total","desc":true}],"limit":10,"offset":5}',
        '{"where":[[{"field":"a.b_c","op":"is null"},{"field":"n","op":"between","value":[1,9]}]]}',
        '{"where":[[{"field":"name","op":"like","value":"ab%"},{"field":"x","op":"not in","value":[1,2]}]],"limit":null}',
        '{}'],
    3: ["\n".join([line % (1, "a", 1, 1, 1), line % (2, "b", 2, 3, 2), "", line % (5, "a", 5, 2, 5)]),
        line % (1, "order-1", 1, 1, 1) + "\r\n",
        line.replace('"data":{"p":%d}', '"data": { "p" : [ %d, 2 ],"s":"a b" }') % (1, "s", 1, 1, 1)],
}
for sel, bodies in seeds.items():
    for i, body in enumerate(bodies):
        open(os.path.join(d, "sel%d-%02d" % (sel, i)), "wb").write(bytes([sel]) + body.encode())
PY
export SWIFT_BACKTRACE=enable=no
exec "$BIN" "$CORPUS" "$SEEDS" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$PWD/.artifacts/" -print_final_stats=1 "$@"
