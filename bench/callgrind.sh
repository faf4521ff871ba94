#!/bin/sh
# Instructions per frame of Connection::receive (server role, masked client frames), counted by
# callgrind: only wsx_receive_all is collected, for N1 and N2 frames, and
#   Ir per frame = (Ir(N2) - Ir(N1)) / (N2 - N1)
# so setup, the first-call SIMD dispatch and anything else paid once per call drop out.
#
# Usage: bench/callgrind.sh [-a] [BUILD_DIR]
#   BUILD_DIR  a meson build directory (default: build-release if present, else build-gcc)
#   -a         also print callgrind_annotate's per-function breakdown of each N2 run
#
# Under valgrind the CPU reports no AVX-512, so the dispatched kernels are the AVX2 ones.
set -eu

annotate=0
if [ "${1:-}" = "-a" ]; then
    annotate=1
    shift
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
if [ -z "$build" ]; then
    if [ -d "$root/build-release" ]; then build=$root/build-release; else build=$root/build-gcc; fi
fi
program=$build/bench/callgrind_receive
if [ ! -x "$program" ]; then
    echo "no $program: build it first (ninja -C $build bench/callgrind_receive)" >&2
    exit 2
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }

n1=1000
n2=5000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Total Ir collected inside wsx_receive_all for one run; the out file is kept for -a.
instructions() {
    out=$work/callgrind.$1.$2.$3
    valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='wsx_receive_all*' \
        "$program" "$1" "$2" "$3" >"$work/stdout" 2>"$work/stderr" || {
        cat "$work/stdout" "$work/stderr" >&2
        exit 1
    }
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out"
}

printf '%-11s %8s %14s %14s %12s\n' kind payload "Ir($n1)" "Ir($n2)" "Ir/frame"
for kind in binary text_ascii text_mixed; do
    for size in 16 125 1024; do
        ir1=$(instructions "$kind" "$size" "$n1")
        ir2=$(instructions "$kind" "$size" "$n2")
        per_frame=$(awk -v a="$ir1" -v b="$ir2" -v n1="$n1" -v n2="$n2" \
            'BEGIN { printf "%.1f", (b - a) / (n2 - n1) }')
        printf '%-11s %8s %14s %14s %12s\n' "$kind" "$size" "$ir1" "$ir2" "$per_frame"
        if [ "$annotate" = 1 ]; then
            # The self cost of each function, largest first, without the binary's path.
            callgrind_annotate --inclusive=no "$work/callgrind.$kind.$size.$n2" 2>/dev/null |
                sed -n '/file:function/,$p' | sed -e '1,2d' -e 's/ \[.*\]$//' -e '/^ *$/d' |
                head -n 8 | sed 's/^/    /'
        fi
    done
done
