#!/usr/bin/env bash
# Checks that the tests catch three deliberate bugs. Each is put, one at a time, into a
# scratch copy of the repository (the working tree is never touched), the test targets
# that should notice are run, and the script reports whether they failed:
#
#   lru    Sources/COverlayRules/rules.c: the LRU victim compared against used[i-1]
#          instead of used[victim] (with 3 buffers A B C B D A gives 4 loads, not 5)
#   stub   Sources/OvlCore/Cluster/StubModel.swift: conditionalStubBytes 16 -> 10
#   merge  Sources/OvlCore/Cluster/Coalescer.swift: the merge limit `merged > limit`
#          becomes `merged >= limit`
#
# First the same targets run on the unmodified copy: they must pass, or a failure under
# a mutation would mean nothing. Exit status 0 when every mutation is caught.
#
# usage: scripts/mutation-check.sh [--keep] [lru|stub|merge ...]
#   --keep   leave the scratch copy (its path is printed)
# environment:
#   MUTATION_DIR  where to make the scratch copy (default: a new directory in $TMPDIR)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keep=0
chosen=()
for arg in "$@"; do
    case "$arg" in
        --keep) keep=1 ;;
        lru|stub|merge) chosen+=("$arg") ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "mutation-check: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
[ ${#chosen[@]} -gt 0 ] || chosen=(lru stub merge)

# The test targets (a swift test --filter) that must fail under each mutation.
declare -A targets=(
    [lru]='OvlCoreTests'
    [stub]='OvlCoreTests|OvlRewriteTests'
    [merge]='OvlCoreTests'
)
# Each mutation: file, the exact text to replace, its replacement.
declare -A file=(
    [lru]='Sources/COverlayRules/rules.c'
    [stub]='Sources/OvlCore/Cluster/StubModel.swift'
    [merge]='Sources/OvlCore/Cluster/Coalescer.swift'
)
declare -A before=(
    [lru]='s->used[i] < s->used[victim]'
    [stub]='conditionalStubBytes = 16'
    [merge]='if merged > limit {'
)
declare -A after=(
    [lru]='s->used[i] < s->used[i-1]'
    [stub]='conditionalStubBytes = 10'
    [merge]='if merged >= limit {'
)

scratch="${MUTATION_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ovl-mutation.XXXXXX")}"
mkdir -p "$scratch"
if [ "$keep" -eq 1 ]; then
    echo "mutation-check: scratch copy in $scratch"
else
    trap 'rm -rf "$scratch"' EXIT
fi
repo="$scratch/repo"
logs="$scratch/logs"
# A copy left by --keep keeps its .build: the next run then builds only what changed.
mkdir -p "$repo" "$logs"
find "$repo" -mindepth 1 -maxdepth 1 ! -name .build -exec rm -rf {} +

# The working tree's files (tracked and new, not ignored), without .build.
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$root" && tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | (cd "$repo" && tar -xf -)
# The dependencies SwiftPM already fetched, so the copy builds without the network.
if [ -d "$root/.build/checkouts" ] && [ ! -d "$repo/.build/checkouts" ]; then
    mkdir -p "$repo/.build"
    cp -a "$root/.build/checkouts" "$root/.build/repositories" "$repo/.build/" 2>/dev/null || true
    cp -a "$root/.build/workspace-state.json" "$repo/.build/" 2>/dev/null || true
fi
[ -f "$root/Package.resolved" ] && cp "$root/Package.resolved" "$repo/"
# tar keeps the files' times, and the Swift driver rebuilds only sources newer than its
# last build: a file an earlier (interrupted) run mutated would not be compiled again.
for m in lru stub merge; do touch "$repo/${file[$m]}"; done

# Runs `swift test` on the copy with a filter; returns its status, output in $2.
run_tests() {
    local filter="$1" log="$2"
    (cd "$repo" && swift build --build-tests >"$log.build" 2>&1) || { echo "build failed (see $log.build)"; return 2; }
    (cd "$repo" && swift test --skip-build --filter "$filter" >"$log" 2>&1)
}

# The names of failed tests in a log, one line.
failed_tests() {
    { grep -aE '✘ Test [^ ]+.* failed' "$1" | grep -avE '✘ Test run with' | sed -E 's/.*✘ Test ([^ ]+).*/\1/'
      grep -aE "Test Case '.*' failed" "$1" | sed -E "s/.*Test Case '([^']+)' failed.*/\1/"
    } | sort -u | head -8 | tr '\n' ' '
}

all_filters=$(for m in "${chosen[@]}"; do echo "${targets[$m]}"; done | tr '|' '\n' | sort -u | paste -sd'|')
echo "mutation-check: baseline: $all_filters on the unmodified copy"
if run_tests "$all_filters" "$logs/baseline"; then
    echo "  passes"
else
    echo "  FAILS before any mutation: $(failed_tests "$logs/baseline")"
    echo "mutation-check: fix the baseline first (log: $logs/baseline)"
    [ "$keep" -eq 1 ] || cp "$logs/baseline" "${TMPDIR:-/tmp}/ovl-mutation-baseline.log"
    exit 1
fi

missed=0
for m in "${chosen[@]}"; do
    f="$repo/${file[$m]}"
    if ! grep -qF -- "${before[$m]}" "$f"; then
        echo "mutation-check: $m: '${before[$m]}' is no longer in ${file[$m]}; update this script"
        missed=$((missed + 1))
        continue
    fi
    cp "$f" "$f.orig"
    MUT_BEFORE="${before[$m]}" MUT_AFTER="${after[$m]}" perl -0pi -e 's/\Q$ENV{MUT_BEFORE}\E/$ENV{MUT_AFTER}/' "$f"
    echo "mutation-check: $m (${file[$m]}: '${before[$m]}' -> '${after[$m]}'), running ${targets[$m]}"
    set +e
    run_tests "${targets[$m]}" "$logs/$m"
    status=$?
    set -e
    if [ "$status" -eq 2 ]; then
        echo "  the mutated copy does not build: caught by the compiler"
    elif [ "$status" -ne 0 ]; then
        echo "  caught: $(failed_tests "$logs/$m")"
    else
        echo "  NOT CAUGHT: every test passed with the bug in"
        missed=$((missed + 1))
    fi
    # Put the file back with a new time, so that the next build compiles it again.
    cp "$f.orig" "$f"
    rm "$f.orig"
    touch "$f"
done

if [ "$missed" -eq 0 ]; then
    echo "mutation-check: every mutation was caught"
else
    echo "mutation-check: $missed mutation(s) not caught"
    exit 1
fi
