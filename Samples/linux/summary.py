#!/usr/bin/env python3
"""The figures of Samples/linux/README.md, from what run.sh left in out/."""
import json
import os
import platform
import re
import subprocess
import sys

out = sys.argv[1]


def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None


times = {}
if os.path.exists(os.path.join(out, "times.txt")):
    for line in open(os.path.join(out, "times.txt")):
        k, v = line.split()
        times[k] = float(v)
rows = load("table.json")
pinned_rows = load("table-pins.json")
paper_rows = load("table-paper.json")
pins = load("pins.json")
serial = open(os.path.join(out, "serial.log"), errors="replace").read()
m = re.search(r"workload done in ([0-9.]+) s", serial)
guest_workload = float(m.group(1)) if m else None
kvm = None
if os.path.exists(os.path.join(out, "serial-kvm.log")):
    mk = re.search(r"workload done in ([0-9.]+) s", open(os.path.join(out, "serial-kvm.log"), errors="replace").read())
    kvm = float(mk.group(1)) if mk else None


def row(rs, g):
    """A sweep row (ovl sweep --json: the Table 1 fields and "phases"), as {row, phases}."""
    r = next((r for r in rs if abs(r["gamma"] - g) < 1e-9), None) if rs else None
    return {"row": r, "phases": r["phases"]} if r else None


def mb(n):
    return f"{n / 1e6:.1f} MB"


cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
print(f"machine: {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; {qemu}")
for k, label in [("build_seconds", "kernel build (make -j2 bzImage)"),
                 ("boot_traced_seconds", "boot + workload under TCG, traced (-d exec,nochain)"),
                 ("boot_untraced_seconds", "boot + workload under TCG, not traced"),
                 ("convert_drain_seconds", "ovl convert after QEMU exited"),
                 ("analyze_seconds", "ovl analyze: read vmlinux and both traces, cluster, cost"),
                 ("sweep_seconds", "ovl sweep, 6 values of γ (text and Figure 5)")]:
    if k in times:
        print(f"{label}: {times[k]:.1f} s")
for k in ("boot_trace_bytes", "workload_trace_bytes"):
    if k in times:
        print(f"{k.replace('_bytes', '')}: {mb(times[k])}")
if "log_bytes" in times:
    print(f"QEMU exec log streamed through the pipe: {times['log_bytes'] / 1e9:.2f} GB, {int(times.get('log_lines', 0)):,} lines")

r0, r10 = row(rows, 0), row(rows, 10)
if r0:
    t = r0["row"]
    print(f".text section: {t['textSectionBytes']:,} B; code bytes (no alignment padding): {t['originalTextBytes']:,} B "
          f"({100 * t['originalTextBytes'] / t['textSectionBytes']:.1f}% of the section)")
    print(f"functions: {t['functions']:,}; chains: {t['chains']:,}; core: {t['coreFunctions']:,} functions, {t['coreBaseBytes']:,} B")
    print(f"code executed (boot + workload): {t['executedCodeBytes']:,} B = "
          f"{100 * t['executedCodeBytes'] / t['originalTextBytes']:.1f}% of code bytes (paper: 32%)")
for g, r, paper in [(0, r0, 56.7), (10, r10, 52.9)]:
    if r:
        t = r["row"]
        print(f"γ = {g}%: memory reduction {t['reductionPercent']:.1f}% (paper {paper}%), total {t['totalMemory']:,} B, "
              f"{t['clusters']:,} clusters, resident {t['residentBytes']:,} B")
        for p in r["phases"]:
            print(f"    {p['phase']}: {p['loads']:,} loads, {p['bytesLoaded'] / 1024:,.0f} KB, {p['estimatedCostSeconds']:.3f} s estimated")
if r10 and guest_workload:
    w = [p for p in r10["phases"] if "workload" in p["phase"]]
    if w:
        c = w[0]["estimatedCostSeconds"]
        print(f"workload load cost at γ = 10%: {c:.3f} s against the workload's {guest_workload:.3f} s of guest time "
              f"(-icount shift=3: 8 ns per instruction) = {100 * c / guest_workload:.1f}% (paper: under 1%)")
        if times.get("workload_host_seconds"):
            h = times["workload_host_seconds"]
            print(f"the same workload run natively on this machine's kernel (init host): {h:.4f} s; "
                  f"the load cost is {c / h:,.0f}× that (paper: under 1%)")
if pinned_rows:
    for g in (0, 10):
        r = row(pinned_rows, g)
        if r:
            t = r["row"]
            loads = ", ".join(f"{p['phase']} {p['loads']:,} loads {p['estimatedCostSeconds']:.3f} s" for p in r["phases"])
            print(f"with the kernel's pins in core, γ = {g}%: reduction {t['reductionPercent']:.1f}%, core {t['coreBaseBytes']:,} B; {loads}")
if pins:
    print(f"pins: {len(pins['pinned']):,} functions, {pins['pinnedBytes']:,} B of {pins['codeBytes']:,} B code; "
          f"{pins['pinnedBeyondCoreBytes']:,} B beyond the configured core; tables: " +
          ", ".join(f"{t['section']} {t['references']:,} ({t['verdict']})" for t in pins["tables"][:14]))

if paper_rows:
    t = paper_rows[0]
    print(f"\nthe paper's core (scheduler, memory management, trap and interrupt handling, from the build): "
          f"{t['coreFunctions']:,} functions, {t['coreBaseBytes']:,} B")
    print("γ(%)  clusters  avg size  max size  total memory  reduction  " +
          "  ".join(f"{p['phase']} loads  KB  cost (s)" for p in t["phases"]))
    for r in paper_rows:
        print(f"{r['gamma']:4.0f}  {r['clusters']:8,}  {r['averageClusterSize']:8.0f}  {r['maxClusterSize']:8,}  "
              f"{r['totalMemory']:12,}  {r['reductionPercent']:8.1f}%  " +
              "  ".join(f"{p['loads']:,}  {p['bytesLoaded'] // 1024:,}  {p['estimatedCostSeconds']:.3f}" for p in r["phases"]))
    r10 = row(paper_rows, 10)
    if r10 and guest_workload:
        w = [p for p in r10["phases"] if "workload" in p["phase"]]
        if w:
            print(f"workload load cost at γ = 10% with the paper's core: {w[0]['estimatedCostSeconds']:.3f} s = "
                  f"{100 * w[0]['estimatedCostSeconds'] / guest_workload:.0f}% of the workload's {guest_workload:.3f} s")
            if times.get("workload_host_seconds"):
                print(f"  = {w[0]['estimatedCostSeconds'] / times['workload_host_seconds']:,.0f}× the workload's "
                      f"{times['workload_host_seconds']:.4f} s run natively on this machine")
