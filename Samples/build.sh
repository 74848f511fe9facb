#!/usr/bin/env bash
# Builds the sample programs listed in manifest.tsv into bin/, runs every
# (program, input) pair natively to record its stdout (.out) and exit status
# (.status), and records an execution trace of each with `ovl record`.
#
# usage: Samples/build.sh [--no-traces]
#   --no-traces  build and run only; do not record traces (no ovl needed)
# environment:
#   OVL  path of the ovl tool (default: <repo>/.build/release/ovl)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

traces=1
for arg in "$@"; do
    case "$arg" in
        --no-traces) traces=0 ;;
        -h|--help)
            sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
            exit 0 ;;
        *)
            echo "build.sh: unknown option '$arg' (try --help)" >&2
            exit 2 ;;
    esac
done

OVL="${OVL:-$here/../.build/release/ovl}"
if [ "$traces" -eq 1 ] && [ ! -x "$OVL" ]; then
    echo "build.sh: the ovl tool was not found at '$OVL'." >&2
    echo "build.sh: run 'swift build -c release' in the repository root first," >&2
    echo "build.sh: set OVL=/path/to/ovl, or pass --no-traces to skip trace recording." >&2
    exit 1
fi

manifest="$here/manifest.tsv"
mkdir -p bin
# outputs of inputs that have left the manifest must not linger
rm -f bin/*.out bin/*.status
if [ "$traces" -eq 1 ]; then
    rm -f bin/*.trace
fi
set -f   # manifest arguments are split on spaces but never glob-expanded

# Manifest lines: binary, source, libc, input, args (TAB separated).
# Blank lines and lines starting with '#' are ignored.
read_manifest() {
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$manifest"
}

# ---- build -------------------------------------------------------------------
declare -A built=()
declare -a order=()
while IFS=$'\t' read -r binary source libc input args; do
    [ -n "${built[$binary]:-}" ] && continue
    case "$libc" in
        musl)  cc=musl-gcc ;;
        glibc) cc=gcc ;;
        *) echo "build.sh: $binary: unknown libc '$libc' in manifest" >&2; exit 1 ;;
    esac
    echo "build   $binary ($libc) from src/$source"
    "$cc" -static -O2 -fno-pie -no-pie -Wl,--emit-relocs -o "bin/$binary" "src/$source"
    if ! readelf -S -W "bin/$binary" | grep -q ' \.rela\.text '; then
        echo "build.sh: bin/$binary has no .rela.text (relocations not kept)" >&2
        exit 1
    fi
    built[$binary]="$libc"
    order+=("$binary")
done < <(read_manifest)

# ---- run natively (oracle) and record traces ---------------------------------
declare -A results=()
while IFS=$'\t' read -r binary source libc input args; do
    status=0
    # shellcheck disable=SC2086  # args are meant to be split on spaces
    "bin/$binary" $args < /dev/null > "bin/$binary.$input.out" || status=$?
    echo "$status" > "bin/$binary.$input.status"
    results[$binary]="${results[$binary]:-} $input=$status"

    if [ "$traces" -eq 1 ]; then
        trace="bin/$binary.$input.trace"
        rm -f "$trace"
        rc=0
        # shellcheck disable=SC2086
        "$OVL" record -o "$trace" -- "bin/$binary" $args < /dev/null > /dev/null || rc=$?
        if [ ! -s "$trace" ]; then
            echo "build.sh: ovl record produced no trace for $binary $input (exit $rc)" >&2
            exit 1
        fi
        if [ "$rc" -ne 0 ] && [ "$rc" -ne "$status" ]; then
            echo "build.sh: warning: ovl record exited $rc for $binary $input" \
                 "(program's native status is $status)" >&2
        fi
    fi
done < <(read_manifest)

# ---- summary -----------------------------------------------------------------
echo
printf '%-16s %-6s %10s  %s\n' binary libc ".text" "inputs (exit status)"
for binary in "${order[@]}"; do
    text=$(size -A "bin/$binary" | awk '$1 == ".text" { print $2 }')
    printf '%-16s %-6s %10s  %s\n' "$binary" "${built[$binary]}" "$text" "${results[$binary]# }"
done
if [ "$traces" -eq 1 ]; then
    echo "traces: bin/*.trace (recorded with $OVL)"
else
    echo "traces: skipped (--no-traces)"
fi
