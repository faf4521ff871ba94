#!/usr/bin/env bash
# Runs bench/fanout against the wsx hub and the gorilla/websocket hub of fanout_go/ in the same
# run, for 64 B and 1 KiB messages on 1 and 2 server threads (GOMAXPROCS for Go), plus 1 KiB with
# permessage-deflate (wsx compresses once per message, gorilla once per connection), and prints
# the deliveries/s ratio wsx : gorilla. The Go program is built offline from Debian's packages
# (golang-go, golang-github-gorilla-websocket-dev) with GOPATH=/usr/share/gocode.
# Usage: bench/fanout.sh [-b BUILD_DIR] [-n SUBSCRIBERS] [-m MESSAGES] [-w WINDOW]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
subscribers=10000
messages=300
window=8
while getopts "b:n:m:w:" opt; do
    case $opt in
    b) build=$OPTARG ;;
    n) subscribers=$OPTARG ;;
    m) messages=$OPTARG ;;
    w) window=$OPTARG ;;
    *) exit 2 ;;
    esac
done
fanout=$build/bench/fanout
[ -x "$fanout" ] || { echo "build $fanout first (ninja -C $build bench/fanout)"; exit 1; }
work=$(mktemp -d)
go_pid=
cleanup() {
    if [ -n "$go_pid" ]; then kill "$go_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
(cd bench/fanout_go && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$work/cache" \
    go build -o "$work/fanout_go" main.go)

rate() { sed -n 's/.*: \([0-9]*\) deliveries\/s.*/\1/p'; }

# threads size deflate
runs=("1 64 0" "1 1024 0" "2 64 0" "2 1024 0" "1 1024 1")
for run in "${runs[@]}"; do
    read -r threads size deflate <<<"$run"
    args=(--subscribers "$subscribers" --messages "$messages" --size "$size" --window "$window"
          --deflate "$deflate")
    # Each server in a process of its own, fed a pipe that closes when the run is done.
    mkfifo "$work/stdin"
    "$fanout" --serve 1 --subscribers "$subscribers" --threads "$threads" --deflate "$deflate" \
        <"$work/stdin" >"$work/port" &
    wsx_pid=$!
    exec 3>"$work/stdin"
    for _ in $(seq 50); do grep -qs port "$work/port" && break; sleep 0.1; done
    port=$(awk '{print $2}' "$work/port")
    wsx_line=$("$fanout" "${args[@]}" --threads "$threads" --port "$port" --label wsx)
    exec 3>&-
    wait "$wsx_pid" || true
    rm -f "$work/stdin" "$work/port"
    echo "$wsx_line"
    go_flags=()
    [ "$deflate" = 1 ] && go_flags=(-deflate)
    GOMAXPROCS=$threads "$work/fanout_go" -addr 127.0.0.1:0 "${go_flags[@]}" >"$work/port" &
    go_pid=$!
    for _ in $(seq 50); do grep -qs port "$work/port" && break; sleep 0.1; done
    port=$(awk '{print $2}' "$work/port")
    go_line=$("$fanout" "${args[@]}" --threads "$threads" --port "$port" --label gorilla)
    kill "$go_pid"
    wait "$go_pid" 2>/dev/null || true
    go_pid=
    echo "$go_line"
    awk -v a="$(echo "$wsx_line" | rate)" -v b="$(echo "$go_line" | rate)" \
        -v t="$threads" -v s="$size" -v d="$deflate" \
        'BEGIN { printf "ratio threads=%s size=%s deflate=%s: wsx/gorilla = %.2f\n", t, s, d, a / b }'
done
