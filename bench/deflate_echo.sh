#!/usr/bin/env bash
# Echo with permessage-deflate off and on: server CPU per echo, in one run, alternating.
# Usage: bench/deflate_echo.sh [WSX (build/apps/wsx)] [ROUNDS (2)]
# The server runs one thread on 127.0.0.1 (a random free-ish port) and is stopped by its pid.
set -euo pipefail
wsx=${1:-build/apps/wsx}
rounds=${2:-2}
for ((round = 1; round <= rounds; ++round)); do
    for mode in off on; do
        port=$((20000 + RANDOM % 20000))
        flags=()
        [ "$mode" = on ] && flags=(--deflate)
        "$wsx" echo --port "$port" --address 127.0.0.1 --threads 1 "${flags[@]}" 2>/dev/null &
        pid=$!
        sleep 0.5
        before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        out=$("$wsx" bench "ws://127.0.0.1:$port/" --connections 50 --size 1024 --text \
            --in-flight 4 --messages 100000 "${flags[@]}" --json --quiet)
        after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        python3 - "$mode" "$((after - before))" "$(getconf CLK_TCK)" "$out" <<'PY'
import json, sys
mode, ticks, hz, report = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
cpu = ticks / hz
print(f"deflate {mode:3}: {report['messages_per_s']:9.0f} msg/s, {report['messages']} echoes, "
      f"{report['errors']} errors, server CPU {cpu:.2f} s = "
      f"{cpu / report['messages'] * 1e6:.1f} us per echo")
PY
    done
done
