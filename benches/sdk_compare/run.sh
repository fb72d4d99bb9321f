#!/usr/bin/env bash
# kpbind (defaults and --force) against the official Volcengine Python SDK's
# attach-only loop, both on the same loopback server that verifies every
# call with the SDK's own signing functions. Prints wall times and calls.
#
#   python3 -m venv /tmp/volc-venv && /tmp/volc-venv/bin/pip install volcengine-python-sdk
#   cargo build --release -p keypair-binder-cli
#   PYTHON=/tmp/volc-venv/bin/python bash benches/sdk_compare/run.sh [INSTANCES] [CONCURRENCY] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")"
python="${PYTHON:-python3}"
kpbind="${KPBIND:-../../target/release/kpbind}"
count="${1:-10000}" concurrency="${2:-8}" rounds="${3:-3}"
ak=AKLTcompare00000000000000000 sk=c2VjcmV0LWtleS1vZi10aGUtY29tcGFyaXNvbg== region=cn-beijing
port=$((20000 + RANDOM % 20000))

serve() {
    port=$((port + 1))
    coproc SERVER { exec "$python" -u server.py "$port" "$ak" "$sk" "$region" "$count"; }
    read -r _ <&"${SERVER[0]}"
}
stats() {
    echo stats >&"${SERVER[1]}"
    read -r line <&"${SERVER[0]}"
    echo "$line"
}
stop() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

seq -f "i-sdkcmp%07g" 0 $((count - 1)) > ids.txt
for round in $(seq "$rounds"); do
    serve
    sdk=$("$python" sdk_loop.py "$port" "$ak" "$sk" "$region" "$count" "$concurrency")
    echo "round $round sdk ($concurrency threads, attach only): ${sdk%% *} s; server: $(stats)"
    stop
    for mode in default --force; do
        serve
        flag=(); [ "$mode" = --force ] && flag=(--force)
        start=$(date +%s.%N)
        VOLCENGINE_ACCESS_KEY=$ak VOLCENGINE_SECRET_KEY=$sk VOLCENGINE_REGION=$region \
            "$kpbind" bind --provider volcengine --keypair kp-compare --endpoint "http://127.0.0.1:$port" \
            --instances-file ids.txt --concurrency "$concurrency" --output json --quiet "${flag[@]}" > report.json
        end=$(date +%s.%N)
        echo "round $round kpbind $mode: $(echo "$end - $start" | bc) s; server: $(stats)"
        stop
    done
done
rm -f ids.txt report.json
