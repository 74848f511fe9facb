#!/usr/bin/env bash
# The overlaid kernel, booted: `ovl rewrite` writes Samples/linux/out/vmlinux with its cold
# code in clusters, and each written kernel boots under qemu-system-x86_64 (TCG, untraced,
# -icount as the traced run) with the same initramfs and command line as run.sh's. For
# each configuration it checks the workload's output against the original kernel's, and
# puts the kernel's own load counters (console lines `ovl: mark …` when the init enters
# sync() at the trace's split point, `ovl: end …` at restart) beside what the cost model
# predicts for the clustering written (`ovl rewrite --json`, "predicted").
#
#   Samples/linux/overlay.sh            # after run.sh (needs out/vmlinux and the traces)
#   OVL=path/to/ovl Samples/linux/overlay.sh
#   Samples/linux/overlay.sh --quick    # only the default and the stress configuration
# OVL_LINUX_OUT: where run.sh put its outputs (default Samples/linux/out).
#
# Configurations:
#   default   linux.toml (γ = 4 %, one 2 KB buffer), profiles boot + workload
#   stress    γ = 0, 2 KB buffer
#   optimized ovl optimize's one-buffer choice (method = affinity, a 4 KB buffer)
#   bootonly  linux.toml clustered from the boot trace alone (the workload never seen)
#   workload2 the default kernel running the second workload (init-alt.c), when traced
#             (run.sh --workload alt)
# Outputs: out/vmlinux-NAME.ovl, out/serial-NAME.log, out/rewrite-NAME.json,
# out/overlay.txt (the table) and out/overlay.json.
set -euo pipefail
quick=0
[ "${1:-}" = --quick ] && quick=1
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${OVL_LINUX_OUT:-$here/out}"
config="$here/linux.toml"
ovl="${OVL:-$repo/.build/release/ovl}"
[ -x "$ovl" ] || { echo "overlay.sh: no ovl at $ovl (swift build -c release, or set OVL)" >&2; exit 1; }
for f in vmlinux boot.trace workload.trace initramfs.cpio; do
    [ -f "$out/$f" ] || { echo "overlay.sh: $out/$f is missing: run Samples/linux/run.sh first" >&2; exit 1; }
done
append="console=ttyS0 nokaslr panic=-1 quiet loglevel=6"
now() { date +%s.%N; }

# boot KERNEL CPIO SERIAL: boots, prints the wall time.
boot() {
    local t0 t1
    t0=$(now)
    timeout 900 qemu-system-x86_64 -m 256M -nographic -no-reboot \
        -kernel "$1" -initrd "$2" -append "$append" -icount shift=3,sleep=off \
        < /dev/null > "$3" 2>&1 || true
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

# The workload's output: its lines, without the run time.
output() { tr -d '\r' < "$1" | grep '^ovl-init:' | grep -v 'workload done in' || true; }

declare -A secs
echo "== booting the original vmlinux (PVH entry)" >&2
secs[original]=$(boot "$out/vmlinux" "$out/initramfs.cpio" "$out/serial-pvh.log")
grep -q 'ovl-init: workload done' "$out/serial-pvh.log" || { echo "the original vmlinux did not run the workload through PVH: $out/serial-pvh.log" >&2; exit 1; }
if [ "$quick" = 0 ] && [ -f "$out/initramfs-alt.cpio" ]; then
    secs[original-alt]=$(boot "$out/vmlinux" "$out/initramfs-alt.cpio" "$out/serial-pvh-alt.log")
fi

names=()
rewrite() {
    local name="$1"; shift
    echo "== ovl rewrite: $name" >&2
    "$ovl" rewrite "$out/vmlinux" "$@" --no-progress --json -o "$out/vmlinux-$name.ovl" > "$out/rewrite-$name.json.tmp"
    mv "$out/rewrite-$name.json.tmp" "$out/rewrite-$name.json"
}
run() {
    local name="$1" kernel="$2" cpio="$3" ref="$4"
    echo "== booting $name" >&2
    secs[$name]=$(boot "$kernel" "$cpio" "$out/serial-$name.log")
    names+=("$name")
    if ! diff <(output "$ref") <(output "$out/serial-$name.log") > "$out/diff-$name.txt"; then
        echo "$name: the workload's output differs from the original kernel's ($out/diff-$name.txt; console in $out/serial-$name.log)" >&2
        tail -20 "$out/serial-$name.log" >&2
        exit 1
    fi
    grep -q 'ovl: end loads' "$out/serial-$name.log" || { echo "$name: no load counters on the console" >&2; exit 1; }
}

profiles=(--profile "$out/boot.trace" --profile "$out/workload.trace")
rewrite default "${profiles[@]}" --config "$config"
run default "$out/vmlinux-default.ovl" "$out/initramfs.cpio" "$out/serial-pvh.log"
rewrite stress "${profiles[@]}" --config "$config" --gamma 0 --buffer 2048
run stress "$out/vmlinux-stress.ovl" "$out/initramfs.cpio" "$out/serial-pvh.log"
if [ "$quick" = 0 ]; then
    # ovl optimize's choice with one buffer (the kernel manager has one): the smallest
    # memory at which the model's workload loads fall to 24× fewer than paging's.
    echo "== ovl optimize (one buffer)" >&2
    "$ovl" optimize "$out/vmlinux" "${profiles[@]}" --config "$config" --buffer-counts 1 --buffer-sizes 4K \
        --memory 410000 --toml "$out/linux-opt.toml" --no-progress > "$out/optimize-1buffer.txt"
    rewrite optimized "${profiles[@]}" --config "$out/linux-opt.toml"
    run optimized "$out/vmlinux-optimized.ovl" "$out/initramfs.cpio" "$out/serial-pvh.log"
    rewrite bootonly --profile "$out/boot.trace" --config "$config"
    run bootonly "$out/vmlinux-bootonly.ovl" "$out/initramfs.cpio" "$out/serial-pvh.log"
fi
if [ "$quick" = 0 ] && [ -f "$out/initramfs-alt.cpio" ] && [ -f "$out/serial-pvh-alt.log" ]; then
    run workload2 "$out/vmlinux-default.ovl" "$out/initramfs-alt.cpio" "$out/serial-pvh-alt.log"
fi

python3 - "$out" "${names[@]}" <<PY
import json, re, sys
out, names = sys.argv[1], sys.argv[2:]
secs = {$(for k in "${!secs[@]}"; do printf '"%s": %s, ' "$k" "${secs[$k]}"; done)}
def counters(path, tag):
    for line in open(path, errors="replace"):
        m = re.search(r"ovl: %s loads (\d+) bytes (\d+)" % tag, line)
        if m: return int(m.group(1)), int(m.group(2))
    return None
def guest(path):
    for line in open(path, errors="replace"):
        m = re.search(r"workload done in ([0-9.]+) s", line)
        if m: return float(m.group(1))
rows = []
for n in names:
    rw = json.load(open(f"{out}/rewrite-{'default' if n == 'workload2' else n}.json"))
    mark, end = counters(f"{out}/serial-{n}.log", "mark"), counters(f"{out}/serial-{n}.log", "end")
    pred = {p["profile"]: p["loads"] for p in rw.get("predicted", [])}
    paging = {p["profile"]: p["pagingLoads"] for p in rw.get("predicted", [])}
    boot_k = mark[0] if mark else None
    work_k = end[0] - mark[0] if mark and end else None
    ref = "original-alt" if n == "workload2" else "original"
    rows.append({
        "name": n, "residentCodeBytes": rw["residentCodeBytes"], "totalMemoryBytes": rw["totalMemoryBytes"],
        "originalCodeBytes": rw["originalTextBytes"], "clusters": rw["clusters"], "storeBytes": rw["storeBytes"],
        "pinnedFunctions": rw.get("kernelPinnedFunctions"),
        "modelBootLoads": pred.get("boot.trace"), "kernelBootLoads": boot_k,
        "modelWorkloadLoads": None if n == "workload2" else pred.get("workload.trace"), "kernelWorkloadLoads": work_k,
        "pagingBootLoads": paging.get("boot.trace"), "pagingWorkloadLoads": None if n == "workload2" else paging.get("workload.trace"),
        "seconds": secs.get(n), "originalSeconds": secs.get(ref),
        "guestWorkloadSeconds": guest(f"{out}/serial-{n}.log"), "originalGuestWorkloadSeconds": guest(f"{out}/serial-pvh{'-alt' if n == 'workload2' else ''}.log"),
    })
json.dump(rows, open(f"{out}/overlay.json", "w"), indent=1)
def f(v): return "—" if v is None else f"{v:,}"
lines = ["config      resident code   total memory   reduction  clusters   boot loads (model / kernel / paging)   workload loads (model / kernel / paging)   boot+workload s (original / ovl)   workload guest s (original / ovl)"]
for r in rows:
    red = 1 - r["totalMemoryBytes"] / r["originalCodeBytes"]
    lines.append(f"{r['name']:<10} {r['residentCodeBytes']:>14,} {r['totalMemoryBytes']:>14,} {red:>10.1%} {r['clusters']:>9,}   "
                 f"{f(r['modelBootLoads']):>9} / {f(r['kernelBootLoads']):>9} / {f(r['pagingBootLoads']):<9}   {f(r['modelWorkloadLoads']):>9} / {f(r['kernelWorkloadLoads']):>9} / {f(r['pagingWorkloadLoads']):<9}   "
                 f"{r['originalSeconds']:>8.2f} / {r['seconds']:<8.2f}              {r['originalGuestWorkloadSeconds']:.4f} / {r['guestWorkloadSeconds']:.4f}")
open(f"{out}/overlay.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
