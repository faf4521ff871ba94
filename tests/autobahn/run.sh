#!/bin/sh
# Runs the official Autobahn|Testsuite against both wsx testees: usage: run.sh PATH/TO/wsx
# Exits 77 (skipped) when wstest is not installed. Reports land in ./reports/.
set -eu
wsx=${1:?usage: run.sh PATH/TO/wsx}
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v wstest >/dev/null 2>&1; then
    echo "wstest (Autobahn|Testsuite) is not installed; see tests/autobahn/README.md"
    exit 77
fi
"$wsx" autobahn-server --address 127.0.0.1 --port 9001 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
sleep 1
wstest -m fuzzingclient -s "$here/fuzzingclient.json"
kill "$server"; wait "$server" || true
wstest -m fuzzingserver -s "$here/fuzzingserver.json" &
fuzzer=$!
trap 'kill "$fuzzer" 2>/dev/null || true' EXIT
sleep 2
"$wsx" autobahn-client --url ws://127.0.0.1:9001 --agent wsx
kill "$fuzzer"
echo "reports: reports/servers/index.html and reports/clients/index.html"
