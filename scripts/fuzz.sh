#!/bin/sh
# Fuzzes every parser of outside input in-process for SECONDS in all (default 60),
# split evenly between the targets: ELF images, the rewriter's reading of an image,
# ovl traces, QEMU exec logs, BOLT .fdata and TOML configurations.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# A crash (a signal instead of an OvlError) stops the run, saves the input under
# fuzz-crashes/ and exits 1: copy it into Tests/Corpus/<kind>/ as a regression input.
# Set CONFIG=debug for a debug build (release by default: more executions a second), and
# FUZZ_SEED=N to repeat a run's mutations.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
config=${CONFIG:-release}
swift build -c "$config" --product ovl-fuzz >&2
bin=$(swift build -c "$config" --show-bin-path)/ovl-fuzz
targets=""
for t in "$@"; do targets="$targets --target $t"; done
# shellcheck disable=SC2086
# FUZZ_SEED fixes the mutations (CI uses one, so a run can be repeated); by default the
# clock picks them.
seed=""
[ -n "${FUZZ_SEED:-}" ] && seed="--seed $FUZZ_SEED"
# shellcheck disable=SC2086
exec "$bin" --seconds "$seconds" --root "$PWD" --crashes fuzz-crashes $seed $targets
