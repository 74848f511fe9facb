#!/usr/bin/env bash
# Reproduce the paper's Tables 1 and 2 (and Figure 5) on a Linux 6.1 tinyconfig kernel:
# build it, boot it under QEMU with a small init that runs a workload, trace boot and
# workload separately through a named pipe into ovl's compact traces, and analyse.
#
#   Samples/linux/run.sh            # every step; a step whose outputs exist is skipped
#   Samples/linux/run.sh --clean    # remove Samples/linux/out/ first
#   Samples/linux/run.sh --until build|boot   # stop after that step
#   Samples/linux/run.sh --extract  # also rewrite the committed CI extract (extract/)
# The last step rewrites the kernel and boots it (overlay.sh; out/overlay.txt).
#   Samples/linux/run.sh --workload alt   # boot and trace the second workload (init-alt.c)
#                                         # into out/alt-boot.trace, out/alt-workload.trace
#
# Outputs, all in Samples/linux/out/: vmlinux, bzImage, init, initramfs.cpio,
# boot.trace, workload.trace, serial.log, table1.txt, table.json, fig5.svg, pins.txt,
# pins.json, table-pins.json, table-paper.json, fig5-paper.svg, summary.txt, times.txt
# (build, boot and ingest times, trace and log sizes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# OVL_LINUX_OUT puts the build and every output elsewhere (CI keeps its kernel build in a
# cache folder outside the clone); OVL names the ovl binary to use instead of building one.
out="${OVL_LINUX_OUT:-$here/out}"
src="$out/linux-source-6.1"
ovl="${OVL:-$repo/.build-linux/debug/ovl}"
config="$here/linux.toml"
jobs="${JOBS:-2}"
until=""
extract=0
workload=main

while [ $# -gt 0 ]; do
    case "$1" in
        --clean) rm -rf "$out"; shift ;;
        --until) until="$2"; shift 2 ;;
        --extract) extract=1; shift ;;
        --workload) workload="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

mkdir -p "$out"
# The workload's init and where its traces go: init.c's, or the second one's.
case "$workload" in
    main) init_src="$here/init.c"; init_bin="$out/init"; cpio="$out/initramfs.cpio"; tag="" ;;
    alt) init_src="$here/init-alt.c"; init_bin="$out/init-alt"; cpio="$out/initramfs-alt.cpio"; tag="alt-" ;;
    *) echo "run.sh: --workload must be main or alt, not $workload" >&2; exit 2 ;;
esac
boot_trace="$out/${tag}boot.trace"
work_trace="$out/${tag}workload.trace"
serial="$out/${tag}serial.log"
log() { printf '\n== %s\n' "$*" >&2; }
# times.txt holds "key value" lines; later runs replace a key rather than append it.
record() {
    [ "$workload" = main ] || return 0   # times.txt holds the main workload's figures
    touch "$out/times.txt"
    grep -v "^$1 " "$out/times.txt" > "$out/times.txt.new" || true
    echo "$1 $2" >> "$out/times.txt.new"
    mv "$out/times.txt.new" "$out/times.txt"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# 1. Packages ---------------------------------------------------------------------------
need=()
for p in linux-source-6.1 qemu-system-x86 flex bison bc libelf-dev libssl-dev cpio \
         musl-tools build-essential python3; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# 2. Source -----------------------------------------------------------------------------
if [ ! -f "$src/Makefile" ]; then
    log "unpacking /usr/src/linux-source-6.1.tar.xz"
    rm -rf "$src"
    tar -C "$out" -xf /usr/src/linux-source-6.1.tar.xz
fi

# 3. Configuration: tinyconfig + config.fragment; every fragment line must survive. ----
frag_sum="$(sha256sum "$here/config.fragment" | cut -d' ' -f1)"
if [ ! -f "$src/.config" ] || [ "$(cat "$out/.config.fragment.sum" 2>/dev/null)" != "$frag_sum" ]; then
    log "configuring: make tinyconfig + config.fragment"
    make -C "$src" ARCH=x86_64 tinyconfig >/dev/null
    (cd "$src" && KCONFIG_CONFIG=.config scripts/kconfig/merge_config.sh -m .config "$here/config.fragment" >/dev/null)
    make -C "$src" ARCH=x86_64 olddefconfig >/dev/null
    missing=0
    while read -r line; do
        case "$line" in CONFIG_*) grep -qx "$line" "$src/.config" || { echo "config: $line did not survive olddefconfig" >&2; missing=1; } ;; esac
    done < "$here/config.fragment"
    [ $missing -eq 0 ] || exit 1
    echo "$frag_sum" > "$out/.config.fragment.sum"
    rm -f "$out/vmlinux" "$out/bzImage"
fi

# 4. Build ------------------------------------------------------------------------------
if [ ! -f "$out/vmlinux" ] || [ ! -f "$out/bzImage" ]; then
    log "building the kernel with -j$jobs"
    t0=$(now)
    make -C "$src" ARCH=x86_64 -j"$jobs" bzImage > "$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; exit 1; }
    t1=$(now)
    record build_seconds "$(elapsed "$t0" "$t1")"
    record build_jobs "$jobs"
    cp "$src/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
    # Traces of another vmlinux do not describe this one.
    rm -f "$out/boot.trace" "$out/workload.trace" "$out/alt-boot.trace" "$out/alt-workload.trace"
    cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
fi
readelf -S -W "$out/vmlinux" | grep '\.rela\.text' > /dev/null || { echo "vmlinux has no .rela.text: RELOCATABLE/RANDOMIZE_BASE missing?" >&2; exit 1; }
[ "$until" = build ] && exit 0

# 5. ovl --------------------------------------------------------------------------------
if [ ! -x "$ovl" ]; then
    log "building ovl"
    (cd "$repo" && swift build --scratch-path .build-linux)
fi

# 6. Init and initramfs -----------------------------------------------------------------
if [ ! -f "$init_bin" ] || [ "$init_src" -nt "$init_bin" ]; then
    log "building the init ($workload workload)"
    musl-gcc -static -O2 -Wall -Wextra -o "$init_bin" "$init_src"
    rm -f "$cpio" "$boot_trace" "$work_trace"
fi
marker="$(nm "$init_bin" | awk '$3 == "workload_begin" { print $1 }')"
[ -n "$marker" ] || { echo "init has no workload_begin symbol" >&2; exit 1; }
if [ ! -f "$cpio" ]; then
    log "packing the initramfs"
    cat > "$out/initramfs.list" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 01777 0 0
file /init $init_bin 0755 0 0
EOF
    "$src/usr/gen_init_cpio" "$out/initramfs.list" > "$cpio.tmp"
    mv "$cpio.tmp" "$cpio"
fi

# 7. Boot, trace and convert ------------------------------------------------------------
# QEMU writes its -d exec,nochain log into a named pipe; ovl convert reads it as it is
# written and splits it at the first execution of the init's workload_begin, so no
# multi-gigabyte log ever reaches the disk. -icount keeps the virtual clock tied to
# instructions, so the 70× slower traced run sees as many timer ticks as a normal one.
if [ ! -f "$boot_trace" ] || [ ! -f "$work_trace" ]; then
    log "booting under QEMU (TCG, traced); split at workload_begin = 0x$marker"
    fifo="$out/qemu-exec.fifo"
    rm -f "$fifo" "$boot_trace" "$work_trace"
    mkfifo "$fifo"
    # tee + wc count what went through the pipe: the size the log would have had on disk.
    ( tee >(wc -lc > "$out/log-count.txt") < "$fifo" \
        | "$ovl" convert - --image "$out/vmlinux" --no-progress \
            -o "$boot_trace" --split-at "0x$marker" -o "$work_trace" ) \
        2> "$out/convert.log" &
    conv=$!
    t0=$(now)
    set +e
    timeout 1800 qemu-system-x86_64 -m 256M -nographic -no-reboot \
        -kernel "$out/bzImage" -initrd "$cpio" \
        -append "console=ttyS0 nokaslr panic=-1 quiet loglevel=6" \
        -icount shift=3,sleep=off -d exec,nochain -D "$fifo" \
        < /dev/null > "$serial" 2> "$out/qemu.log"
    qrc=$?
    t1=$(now)
    wait $conv
    crc=$?
    set -e
    t2=$(now)
    rm -f "$fifo"
    if [ $qrc -ne 0 ] || [ $crc -ne 0 ]; then
        echo "boot failed: qemu $qrc, convert $crc" >&2
        tail -5 "$serial" "$out/qemu.log" "$out/convert.log" >&2
        rm -f "$boot_trace" "$work_trace"
        exit 1
    fi
    record boot_traced_seconds "$(elapsed "$t0" "$t1")"
    record convert_drain_seconds "$(elapsed "$t1" "$t2")"
    # The same boot without the exec log: what tracing costs.
    t0=$(now)
    timeout 600 qemu-system-x86_64 -m 256M -nographic -no-reboot \
        -kernel "$out/bzImage" -initrd "$cpio" \
        -append "console=ttyS0 nokaslr panic=-1 quiet loglevel=6" \
        -icount shift=3,sleep=off < /dev/null > "$out/serial-untraced.log" 2>&1 || true
    t1=$(now)
    record boot_untraced_seconds "$(elapsed "$t0" "$t1")"
    sleep 1
    read -r lines bytes < "$out/log-count.txt" || true
    record log_lines "${lines:-0}"
    record log_bytes "${bytes:-0}"
fi
if [ "$workload" != main ]; then
    grep -q 'ovl-init: workload done' "$serial" || { echo "$serial: the init's workload did not finish" >&2; exit 1; }
    log "traced the $workload workload: $boot_trace, $work_trace"
    exit 0
fi
# The kernel's own console must show that the init ran its workload and rebooted.
grep -q 'ovl-init: workload done' "$out/serial.log" || { echo "serial.log: the init's workload did not finish" >&2; exit 1; }
grep -q 'reboot: Restarting system' "$out/serial.log" || { echo "serial.log: the kernel did not restart" >&2; exit 1; }
[ "$until" = boot ] && exit 0
# The workload's run time on real hardware: the same init, as an ordinary process on this
# machine's kernel, its files on a fresh tmpfs directory (best of 5 runs).
hostdir="$(mktemp -d "${TMPDIR_WORKLOAD:-/dev/shm}/ovl-workload.XXXXXX" 2>/dev/null || mktemp -d)"
host_line="$("$out/init" host "$hostdir")" || { rm -rf "$hostdir"; echo "init host: the workload failed natively" >&2; exit 1; }
rm -rf "$hostdir"
record workload_host_seconds "$(echo "$host_line" | awk '{ for (i = 1; i < NF; i++) if ($i == "in") print $(i + 1) }')"
record boot_trace_bytes "$(stat -c %s "$out/boot.trace")"
record workload_trace_bytes "$(stat -c %s "$out/workload.trace")"

# 8. Analysis ---------------------------------------------------------------------------
# fresh OUT INPUT…: OUT exists and is newer than every input (else the step runs again;
# a new ovl does not count: --clean, or deleting out/table*.json, analyses anew).
fresh() {
    local o="$1"; shift
    [ -f "$o" ] || return 1
    for i in "$@"; do [ "$i" -nt "$o" ] && return 1; done
    return 0
}
profiles=(--profile "$out/boot.trace" --profile "$out/workload.trace")
inputs=("$out/vmlinux" "$out/boot.trace" "$out/workload.trace")
gam="0,2,4,6,8,10"   # the paper's rows

# The paper's own core (§3.1: "the scheduler, the memory management, the trap and
# interrupt handling code"), taken from the build: every function the objects of those
# subsystems define, added to linux.toml's core. A second configuration, beside the lean one.
paper_cfg="$out/linux-paper-core.toml"
if ! fresh "$paper_cfg" "$config" "$out/vmlinux"; then
    for o in mm/built-in.a arch/x86/mm/built-in.a kernel/sched/built-in.a kernel/irq/built-in.a \
             kernel/time/built-in.a kernel/softirq.o arch/x86/entry/built-in.a arch/x86/kernel/apic/built-in.a \
             arch/x86/kernel/traps.o arch/x86/kernel/irq.o arch/x86/kernel/irq_64.o arch/x86/kernel/irqinit.o \
             arch/x86/kernel/idt.o arch/x86/kernel/i8259.o arch/x86/kernel/i8253.o arch/x86/kernel/nmi.o \
             arch/x86/kernel/time.o arch/x86/kernel/tsc.o; do
        nm --defined-only "$src/$o" | awk '$2 ~ /^[tT]$/ { print $3 }'
    done | sort -u > "$out/paper-core.txt"
    python3 - "$config" "$out/paper-core.txt" "$paper_cfg" <<'PY'
import sys
cfg, names, dst = sys.argv[1:]
text = open(cfg).read()
items = "".join(f'"{n}", ' for n in open(names).read().split())
marker = "functions = ["
assert marker in text
text = text.replace(marker, marker + "\n  # The paper's core: every function of mm/, arch/x86/mm/, kernel/sched/, kernel/irq/, kernel/time/,\n"
                    "  # kernel/softirq.o, arch/x86/entry/ and the x86 trap, interrupt, APIC and timer objects.\n  " + items, 1)
open(dst, "w").write("# Generated by run.sh from " + cfg + " and the kernel build.\n" + text)
PY
fi

if ! fresh "$out/table.json" "${inputs[@]}" "$config"; then
    log "analysing: sweep γ = $gam (linux.toml)"
    t0=$(now)
    "$ovl" sweep "$out/vmlinux" "${profiles[@]}" --config "$config" --gammas "$gam" --no-progress \
        --svg "$out/fig5.svg" > "$out/table1.txt.tmp"
    t1=$(now)
    mv "$out/table1.txt.tmp" "$out/table1.txt"
    record sweep_seconds "$(elapsed "$t0" "$t1")"
    "$ovl" sweep "$out/vmlinux" "${profiles[@]}" --config "$config" --gammas "$gam" --no-progress --json > "$out/table.json.tmp"
    mv "$out/table.json.tmp" "$out/table.json"
fi
if ! fresh "$out/analyze.json" "${inputs[@]}" "$config"; then
    # Ingest: reading vmlinux and both traces, chains, one clustering and its cost.
    t0=$(now)
    "$ovl" analyze "$out/vmlinux" "${profiles[@]}" --config "$config" --no-progress --json > "$out/analyze.json.tmp"
    t1=$(now)
    mv "$out/analyze.json.tmp" "$out/analyze.json"
    record analyze_seconds "$(elapsed "$t0" "$t1")"
fi
if ! fresh "$out/pins.json" "$out/vmlinux" "$config"; then
    "$ovl" kernel-pins "$out/vmlinux" --config "$config" --write-config "$out/linux-pins.toml" > "$out/pins.txt"
    "$ovl" kernel-pins "$out/vmlinux" --config "$config" --json > "$out/pins.json.tmp"
    mv "$out/pins.json.tmp" "$out/pins.json"
fi
# Table 1 again with every function the kernel's tables pin kept in core, and with the
# paper's core.
if ! fresh "$out/table-pins.json" "${inputs[@]}" "$out/pins.json"; then
    log "analysing: the kernel's pins in core"
    "$ovl" sweep "$out/vmlinux" "${profiles[@]}" --config "$out/linux-pins.toml" --gammas 0,10 --no-progress --json > "$out/table-pins.json.tmp"
    mv "$out/table-pins.json.tmp" "$out/table-pins.json"
fi
if ! fresh "$out/table-paper.json" "${inputs[@]}" "$paper_cfg"; then
    log "analysing: sweep γ = $gam (the paper's core)"
    "$ovl" sweep "$out/vmlinux" "${profiles[@]}" --config "$paper_cfg" --gammas "$gam" --no-progress \
        --svg "$out/fig5-paper.svg" --json > "$out/table-paper.json.tmp"
    mv "$out/table-paper.json.tmp" "$out/table-paper.json"
fi
python3 "$here/summary.py" "$out" | tee "$out/summary.txt"

# 9. The committed CI extract (Samples/linux/extract/): written when missing or with
# --extract. The reduced vmlinux (xz), 400,000-address excerpts of both traces starting
# in the kernel, and what this run measured on the whole vmlinux, for the tests.
ex="$here/extract"
if [ "$extract" = 1 ] || [ ! -f "$ex/expected.json" ]; then
    log "writing the CI extract into $ex"
    mkdir -p "$ex"
    python3 "$here/reduce.py" "$out/vmlinux" "$out/vmlinux.reduced"
    xz -9e -T1 -c "$out/vmlinux.reduced" > "$ex/vmlinux.xz"
    text="$(readelf -S -W "$out/vmlinux" | sed 's/^ *\[ *[0-9]*\]//' | awk '$1 == ".text" { print $3, $5 }')"
    lo="${text% *}"; hi="$(printf '%x' $(( 0x$lo + 0x${text#* } )))"
    python3 "$here/excerpt.py" "$out/boot.trace" "$ex/boot.trace" --count 400000 --start-in "$lo" "$hi"
    python3 "$here/excerpt.py" "$out/workload.trace" "$ex/workload.trace" --count 400000 --start-in "$lo" "$hi"
    python3 - "$out" "$ex/expected.json" <<'PY'
import json, sys
out, dst = sys.argv[1], sys.argv[2]
row = json.load(open(f"{out}/table.json"))[0]
pins = json.load(open(f"{out}/pins.json"))
analyze = json.load(open(f"{out}/analyze.json"))
import subprocess
size = int(subprocess.run(["readelf", "-S", "-W", f"{out}/vmlinux"], capture_output=True, text=True).stdout
           .split(" .text ")[1].split()[3], 16)
json.dump({
    "textSize": size,
    "codeBytes": row["originalTextBytes"],
    "functions": row["functions"],
    "coreFunctions": row["coreFunctions"],
    "executedCodeBytes": row["executedCodeBytes"],
    "pinnedFunctions": len(pins["pinned"]),
    "pins": {t["section"]: {"references": t["references"], "verdict": t["verdict"]} for t in pins["tables"]},
}, open(dst, "w"), indent=1, sort_keys=True)
print(f"{dst}: written")
PY
    ls -la "$ex"
fi

log "Table 1 and Table 2 (γ = 0…10), linux.toml"
cat "$out/table1.txt"

# 10. The overlaid kernel ---------------------------------------------------------------
# ovl rewrite writes the kernel with its cold code in clusters; overlay.sh boots it at
# five configurations, checks the workload's output against the original's and puts the
# kernel's own load counters beside the model's prediction and demand paging's
# (out/overlay.txt). Traces a second workload first when it has none (run.sh --workload alt).
if [ ! -f "$out/alt-workload.trace" ] && [ -z "${OVL_NO_ALT:-}" ]; then
    "$here/run.sh" --workload alt
fi
log "the overlaid kernel (overlay.sh)"
OVL="$ovl" OVL_LINUX_OUT="$out" "$here/overlay.sh"
