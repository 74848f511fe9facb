import Foundation

/// Writes an overlaid Linux kernel: the same `vmlinux`, entered through its PVH note
/// (`qemu-system-x86_64 -kernel OUT`), with its cold functions run from a code buffer.
///
/// Resident code stays where the linker put it — the kernel patches and looks up code by
/// its link address in a dozen tables, and moving resident code would mean rewriting all
/// of them. What moves is every function of a cluster: its calls, jumps and address
/// references from resident code and data now reach a thunk, and its code is copied into
/// the buffer by the kernel overlay manager (`KernelManagerSource`) when it runs. The
/// moved functions' original bytes stay in the image, dead: the boot-time patchers
/// (alternatives, retpoline and return sites) and the lookup tables (ORC, exception and
/// bug tables) that name them find what they expect and touch nothing that runs.
///
/// Everything new — the manager, the thunks, its tables, the buffer and the overlay
/// store — goes into the int3 fill of `.text` (on x86-64 6.1 the SRSO mitigation leaves
/// about 2.7 MB of it): memory the kernel maps and reserves already, executable, and
/// read-only once `mark_rodata_ro` has run, which is why the manager writes with CR0.WP
/// clear. The file keeps its size and layout; only bytes change.
///
/// Functions that cannot move are kept resident: those the kernel patches at run time
/// or looks up by address (`KernelPins`: jump labels, static calls, exception and bug
/// tables), those with alternatives (patched at boot, and their unpatched form is not
/// always correct, e.g. SMAP's `stac`), the special text sections (entry, noinstr, sched,
/// cpuidle, locks, thunks, static-call trampolines), the functions the manager calls
/// (`panic`, `_printk`, `irqentry_enter/exit`, `machine_restart/halt/power_off`), and
/// functions joined to another by a short branch or a fall-through.
public enum KernelRewriter {
    public static func isKernel(_ elf: ELFFile) -> Bool {
        elf.symbols.contains { $0.name == "start_kernel" && $0.isFunction }
    }

    /// Tables whose code references are left pointing at the original (dead) copies.
    static let leftAlone: Set<String> = [
        "__ex_table", "__bug_table", ".orc_unwind_ip", ".orc_unwind", ".retpoline_sites", ".return_sites",
        ".altinstructions", ".smp_locks", ".parainstructions", ".call_sites", ".ibt_endbr_seal", ".cfi_sites",
        "__jump_table", ".static_call_sites", "__mcount_loc", "__patchable_function_entries",
        "_kprobe_blacklist", "_error_injection_whitelist", ".notes", ".BTF", ".BTF_ids",
    ]
    /// Symbols the manager calls or hooks.
    static let managerCalls = ["panic", "_printk", "irqentry_enter", "irqentry_exit", "machine_restart", "machine_halt", "machine_power_off", "__x64_sys_sync"]
    /// Variables the manager reads.
    static let managerData = ["kernel_set_to_readonly", "page_offset_base", "phys_base", "system_state"]
    static let hooks: [String: String] = [
        "irqentry_enter": "ovl_irqentry_enter", "irqentry_exit": "ovl_irqentry_exit",
        "machine_restart": "ovl_hook_machine_restart", "machine_halt": "ovl_hook_machine_halt",
        "machine_power_off": "ovl_hook_machine_power_off",
        // The phase mark: the workloads call sync() where their trace is split.
        "__x64_sys_sync": "ovl_hook_sys_sync",
    ]

    /// Refuses a kernel built without what the rewriter needs, saying what to change in
    /// its configuration.
    public static func check(_ elf: ELFFile) throws {
        func sym(_ n: String) -> ELFFile.Symbol? { elf.symbols.first { $0.name == n && $0.sectionIndex != 0 } }
        if !elf.hasCodeRelocations {
            throw OvlError.file(elf.path, "is a kernel linked without its relocations, so its code pointers cannot be found; set CONFIG_RELOCATABLE=y and CONFIG_RANDOMIZE_BASE=y (x86-64 links vmlinux with --emit-relocs only then; boot with nokaslr or through PVH)")
        }
        if sym("pvh_start_xen") == nil {
            throw OvlError.file(elf.path, "has no PVH entry, so the rewritten vmlinux could not be booted as it is; set CONFIG_HYPERVISOR_GUEST=y and CONFIG_PVH=y")
        }
        if sym("__per_cpu_offset") != nil {
            throw OvlError.file(elf.path, "is built for several CPUs; the kernel overlay manager has one code buffer for one CPU: set # CONFIG_SMP is not set")
        }
        if sym("vmalloc_stack") != nil || elf.symbols.contains(where: { $0.name == "cached_stacks" }) {
            throw OvlError.file(elf.path, "uses virtually mapped stacks; the manager keeps return records at the base of 16 KB-aligned stacks: set # CONFIG_VMAP_STACK is not set")
        }
        for n in managerCalls + managerData + ["__preempt_count", "init_stack", "_stext", "_etext"] where sym(n) == nil {
            throw OvlError.file(elf.path, "has no symbol \(n), which the kernel overlay manager needs (is this an x86-64 Linux 6.x vmlinux?)")
        }
        for n in ["init_stack", "irq_stack_backing_store"] {
            if let s = sym(n), s.value % 16384 != 0 {
                throw OvlError.file(elf.path, "has \(n) at 0x\(String(s.value, radix: 16)), not 16 KB-aligned; the manager needs THREAD_SIZE-aligned 16 KB stacks (no KASAN)")
            }
        }
        if elf.section(named: ".text") == nil { throw OvlError.file(elf.path, "has no .text section") }
    }

    public static func rewrite(session s: Session, clustering c: Clustering) throws -> RewriteResult {
        let p = s.program, elf = p.elf
        try check(elf)
        guard s.config.buffers == 1 else {
            throw OvlError("a kernel image has one code buffer (the manager runs with one CPU and no LRU state to update on every call); set buffers = 1")
        }
        let bufSize = s.config.bufferSize
        guard bufSize >= Rewriter.minimumBufferSize, bufSize <= 0x1_0000 else {
            throw OvlError("the kernel's code buffer must hold 64 B to 64 KB (a cluster's thunks name offsets in 16 bits); it is \(bufSize) B")
        }
        func symbol(_ n: String) throws -> UInt64 {
            guard let v = elf.symbols.first(where: { $0.name == n && $0.sectionIndex != 0 })?.value else { throw OvlError.file(elf.path, "has no symbol \(n)") }
            return v
        }
        guard let text = elf.section(named: ".text") else { throw OvlError.file(elf.path, "has no .text") }

        // 1. What cannot move.
        var pinned = Set<Int>()
        var why: [Int: String] = [:]
        func pin(_ f: Int?, _ reason: String, evenGap: Bool = false) {
            if let f, evenGap || !p.functions[f].isGap, pinned.insert(f).inserted { why[f] = reason }
        }
        let pins = KernelPins.analyse(program: p, core: CoreSet.resolve(s.config, program: p))
        for x in pins.pinned { pin(p.function(containing: x.address), "named by " + x.tables.keys.sorted().joined(separator: ", ")) }
        for rs in elf.relocationSections where rs.appliesTo < elf.sections.count && elf.sections[rs.appliesTo].name == ".altinstructions" {
            for r in rs.relocations where r.type != 0 { pin(p.function(containing: r.target), "alternatives") }
        }
        let special = KernelTextRanges.ranges(KernelTextRanges.knownSections + [".static_call.text", ".head.text", ".lock.text", ".text..__x86.return_thunk"], in: elf)
        for (i, f) in p.functions.enumerated() where !f.isGap {
            if f.section != ".text" { pin(i, "outside .text") }
            if special.contains(where: { $0.range.contains(f.address) }) { pin(i, "special text section") }
            if f.address < text.address || f.end > text.address + text.size { pin(i, "outside .text") }
        }
        for n in managerCalls { pin(p.functionIndex(named: n), "called by the overlay manager") }
        // Short branches and fall-throughs between functions tie both to one place.
        for b in 0..<p.blockCount {
            let f = Int(p.blockFunction[b])
            let k = p.blockKind[b]
            if k == .fallThrough || k == .conditionalJump || k == .call {
                let end = p.blockStart[b] + UInt64(p.blockSize[b])
                if let nb = p.block(startingAt: end), Int(p.blockFunction[nb]) != f, k != .call {
                    pin(f, "falls through into another function"); pin(Int(p.blockFunction[nb]), "entered by a fall-through")
                }
            }
            guard k.isDirect else { continue }
            let t = p.blockTargetAddress[b]
            guard let tf = p.function(containing: t), tf != f else { continue }
            if let last = p.instructions(ofBlock: b).last, last.immSize == 1 {
                pin(f, "short branch into another function"); pin(tf, "entered by a short branch")
            }
        }

        // Resident code stays in place, so a branch from it into moved code must be one
        // whose displacement can reach a thunk (rel32), and it must not fall into moved
        // code. Clustering decides per chain; where it split a function against these
        // rules, the function is kept whole and the clusters are laid out again.
        var builder: Builder
        var failed: [String] = []
        var rounds = 0
        while true {
            rounds += 1
            builder = Builder(session: s, clustering: c, backend: .memory, linker: nil)
            builder.kernel = true
            for f in pinned { for bl in p.functions[f].blocks { builder.chainCluster[Int(s.chains.blockChain[bl])] = -1 } }
            failed = []
            try builder.prepareKernel(failed: &failed)
            let cc = builder.chainCluster
            func moved(_ b: Int) -> Bool { cc[Int(s.chains.blockChain[b])] >= 0 }
            var more: [Int] = []
            for b in 0..<p.blockCount where !moved(b) {
                let k = p.blockKind[b]
                if k == .fallThrough || k == .conditionalJump || k == .call || k == .indirectCall {
                    let end = p.blockStart[b] + UInt64(p.blockSize[b])
                    if let nb = p.block(startingAt: end), moved(nb) { more.append(Int(p.blockFunction[b])); more.append(Int(p.blockFunction[nb])) }
                }
                guard k.isDirect, let tb = p.block(containing: p.blockTargetAddress[b]), moved(tb) else { continue }
                if let last = p.instructions(ofBlock: b).last, last.immSize != 4 { more.append(Int(p.blockFunction[b])); more.append(Int(p.blockFunction[tb])) }
            }
            let before = pinned.count
            for f in more { pin(f, "a short branch or fall-through joins its resident and moved parts", evenGap: true) }
            if pinned.count == before { break }
            guard rounds < 20 else { throw OvlError("internal: keeping functions whole did not settle after 20 rounds") }
        }
        let chainCluster = builder.chainCluster
        let blockChain = s.chains.blockChain
        func movedBlock(_ a: UInt64) -> Int? {
            guard let b = p.block(containing: a), chainCluster[Int(blockChain[b])] >= 0 else { return nil }
            return b
        }

        // 2. References from resident code, other code sections and data, as deltas to
        // apply once the thunks have addresses.
        enum Ref { case jump(UInt64), call(UInt64), hook(String) }
        var refs: [(fileOffset: Int, size: Int, old: UInt64, ref: Ref)] = []
        var seen = Set<Int>()
        func fileOffset(_ a: UInt64) -> Int? {
            guard let sec = elf.section(containing: a), sec.hasFileBytes else { return nil }
            return Int(sec.offset + (a - sec.address))
        }
        // A relocation against a function or a section (`.text+0x40`, a static function) is
        // a code pointer; one against a plain symbol that happens to equal a block's start
        // (`_etext`, `__init_begin`: linker-script boundaries) is an address computation
        // and keeps its value. (Leaving a real pointer alone would be harmless: the moved
        // function's original bytes stay in place and still run.)
        func pointsAtCode(_ r: ELFFile.Relocation) -> Bool { Builder.pointsAtCode(r, elf) }
        var hookTargets: [UInt64: String] = [:]
        for (n, h) in hooks { hookTargets[try symbol(n)] = h }
        let analysed = Set(p.analysedSections)
        for b in 0..<p.blockCount where chainCluster[Int(blockChain[b])] < 0 && !p.functions[Int(p.blockFunction[b])].isGap {
            guard let sec = elf.section(containing: p.blockStart[b]), analysed.contains(sec.name) else { continue }
            for ins in p.instructions(ofBlock: b) {
                let next = ins.address + UInt64(ins.length)
                if ins.flow.isDirect && ins.immSize > 0 {
                    let t = ins.target
                    if let h = hookTargets[t], ins.immSize == 4 {
                        let fo = fileOffset(ins.address + UInt64(ins.immOffset))!
                        if seen.insert(fo).inserted { refs.append((fo, 4, t, .hook(h))) }
                        continue
                    }
                    guard movedBlock(t) != nil else { continue }
                    guard ins.immSize == 4 else { throw OvlError("internal: a short branch at 0x\(String(ins.address, radix: 16)) into moved code") }
                    let fo = fileOffset(ins.address + UInt64(ins.immOffset))!
                    if seen.insert(fo).inserted { refs.append((fo, 4, t, ins.flow == .call ? .call(t) : .jump(t))) }
                    continue
                }
                if ins.memIsRIPRelative && ins.dispSize == 4 {
                    let t = next &+ UInt64(bitPattern: ins.disp)
                    if let r = builder.codeRelocs[ins.address + UInt64(ins.dispOffset)], !pointsAtCode(r) { continue }
                    if movedBlock(t) != nil {
                        guard p.block(startingAt: t) != nil else { continue }
                        let fo = fileOffset(ins.address + UInt64(ins.dispOffset))!
                        if seen.insert(fo).inserted { refs.append((fo, 4, t, .jump(t))) }
                    }
                }
            }
        }
        // Relocations: absolute fields in analysed code; everything in other code sections
        // (.init.text, .altinstr_replacement, .exit.text) and in data but the tables left alone.
        var mergedRanges: [(String, Range<UInt64>)] = []
        do {
            var bounds: [String: (UInt64?, UInt64?)] = [:]
            for sym in elf.symbols where sym.sectionIndex != 0 {
                if sym.name.hasPrefix("__start_"), let n = KernelPins.merged[String(sym.name.dropFirst(8))] { bounds[n, default: (nil, nil)].0 = sym.value }
                if sym.name.hasPrefix("__stop_"), let n = KernelPins.merged[String(sym.name.dropFirst(7))] { bounds[n, default: (nil, nil)].1 = sym.value }
            }
            for (n, v) in bounds { if let a = v.0, let b = v.1, a < b { mergedRanges.append((n, a..<b)) } }
        }
        for rs in elf.relocationSections where rs.appliesTo < elf.sections.count {
            let sec = elf.sections[rs.appliesTo]
            guard sec.isAllocated, sec.hasFileBytes, !leftAlone.contains(sec.name) else { continue }
            let inAnalysed = analysed.contains(sec.name)
            for r in rs.relocations where r.type != 0 && sec.contains(r.offset) {
                let size: Int, pcRel: Bool
                switch r.type {
                case ELFFile.R_X86_64_64: size = 8; pcRel = false
                case ELFFile.R_X86_64_32, ELFFile.R_X86_64_32S: size = 4; pcRel = false
                case ELFFile.R_X86_64_PC32, 4 /* PLT32 */: size = 4; pcRel = true
                default: continue
                }
                if inAnalysed && (pcRel || movedBlock(r.offset) != nil) { continue }  // decoded above, or moved
                if let m = mergedRanges.first(where: { $0.1.contains(r.offset) }), leftAlone.contains(m.0) { continue }
                // A PC-relative field in code is followed by the instruction's end (a call,
                // jump or RIP-relative address load); in data it names its target itself.
                let t = pcRel && sec.isExecutable ? r.target &+ 4 : r.target
                guard pointsAtCode(r) else { continue }
                if let h = hookTargets[t] {
                    let fo = Int(sec.offset + (r.offset - sec.address))
                    if seen.insert(fo).inserted { refs.append((fo, size, t, .hook(h))) }
                    continue
                }
                guard movedBlock(t) != nil else { continue }
                // Not a block's start: an address computed from a symbol (`_text + 0xfff`),
                // not a code pointer; it keeps its value.
                guard p.block(startingAt: t) != nil else { continue }
                let fo = Int(sec.offset + (r.offset - sec.address))
                guard seen.insert(fo).inserted else { continue }
                let isCall = sec.isExecutable && pcRel && fo >= 1 && elf.bytes[fo - 1] == 0xE8
                refs.append((fo, size, t, isCall ? .call(t) : .jump(t)))
            }
        }
        for r in refs {
            switch r.ref {
            case .jump(let t): builder.needJumpThunk(t)
            case .call(let t): builder.needCallThunk(t)
            case .hook: break
            }
        }

        // 3. Where the new parts go: the int3 fill of .text, away from every function.
        var runs: [(start: UInt64, end: UInt64)] = []
        do {
            let base = Int(text.offset), n = Int(text.size)
            var i = 0
            while i < n {
                if elf.bytes[base + i] == 0xCC {
                    var j = i
                    while j < n && elf.bytes[base + j] == 0xCC { j += 1 }
                    if j - i >= 0x4000 {
                        // Keep 64 bytes from the neighbours (alias trampolines sit right after).
                        let a = (text.address + UInt64(i) + 64 + 63) & ~63, e = (text.address + UInt64(j) - 64) & ~63
                        if e > a, !p.functions.contains(where: { !$0.isGap && $0.size > 0 && $0.address < e && $0.end > a }) { runs.append((a, e)) }
                    }
                    i = j
                } else { i += 1 }
            }
        }
        runs.sort { $0.end - $0.start < $1.end - $1.start }

        // The manager, linked once to learn its size.
        let manager = try KernelManagerLinker()
        let probe = try manager.link(at: 0xffff_ffff_8100_0000, symbols: try Dictionary(uniqueKeysWithValues: (managerCalls + managerData).uniqued().map { ($0, try symbol($0)) }))
        let clusterUnits = builder.clusterUnits
        let clusterCount = clusterUnits.count
        let entries = builder.thunkBlocks.count
        let jcount = builder.jumpThunks.count, ccount = builder.callThunks.count
        let up = { (v: UInt64, a: UInt64) in (v + a - 1) / a * a }
        let managerSize = up(UInt64(probe.bytes.count), 64)
        let partsSize = managerSize + UInt64(jcount * 15 + ccount * 10) + UInt64(entries * 16) + UInt64(clusterCount * 40) + 64 + 64 + 8192
        let needed = partsSize + UInt64(bufSize)
        guard let mi = runs.firstIndex(where: { $0.end - $0.start >= needed }) else {
            throw OvlError.file(elf.path, "has no run of int3 fill in .text big enough for the overlay manager, its tables and a \(bufSize) B buffer (\(needed) B)")
        }
        let region = runs.remove(at: mi)
        var at = region.start
        let managerAt = at; at += managerSize
        let jthunkAt = at; at += UInt64(jcount * 15)
        let cthunkAt = at; at += UInt64(ccount * 10)
        at = up(at, 8)
        let entriesAt = at; at += UInt64(entries * 8)
        let originAt = at; at += UInt64(entries * 8)
        let clusterAddrAt = at; at += UInt64(clusterCount * 16)
        let countersAt = at; at += UInt64(clusterCount * 16)
        let clusterOriginAt = at; at += UInt64(clusterCount * 8)
        at = up(at, 4096)
        let ptePageAt = at; at += 4096
        at = up(at, 64)
        let bufferAt = at; at += UInt64(bufSize)
        var storeRuns = runs.map { ($0.start, $0.end) }
        if at < region.end { storeRuns.append((up(at, 64), region.end)) }
        storeRuns.sort { $0.1 - $0.0 > $1.1 - $1.0 }

        let linked = try manager.link(at: managerAt, symbols: try Dictionary(uniqueKeysWithValues: (managerCalls + managerData).uniqued().map { ($0, try symbol($0)) }))
        guard linked.bytes.count == probe.bytes.count else { throw OvlError("internal: the kernel overlay manager changed size between links") }
        func msym(_ n: String) throws -> UInt64 {
            guard let v = linked.symbols[n] else { throw OvlError("internal: the kernel overlay manager has no symbol \(n)") }
            return v
        }

        let jIndex = builder.jumpThunkIndex, cIndex = builder.callThunkIndex
        // Code outside the analysed sections (.init.text) is resident, in unit 0.
        let unitOf: (UInt64) -> Int = { a in p.block(containing: a).map { Int(chainCluster[Int(blockChain[$0])]) + 1 } ?? 0 }
        let resolve: (CodeRef) throws -> UInt64 = { r in
            switch r {
            case .code(let b):
                guard unitOf(b) == 0 else { throw OvlError("internal: code at 0x\(String(b, radix: 16)) is not resident") }
                // Cluster code reaches a hooked function through its hook too.
                if let h = hookTargets[b] { return try msym(h) }
                return b
            case .jumpThunk(let b): return jthunkAt + UInt64(jIndex[b]! * 15)
            case .callThunk(let b): return cthunkAt + UInt64(cIndex[b]! * 10)
            case .fixed(let a): return a
            case .manager(let n): return try msym(n.rawValue)
            case .packed(let b):
                let k = unitOf(b)
                if k == 0 {
                    if let h = hookTargets[b] { return try msym(h) }
                    guard b >= 0xffff_ffff_8000_0000 else { throw OvlError("internal: resident code at 0x\(String(b, radix: 16)) outside the kernel's top 2 GB") }
                    return b
                }
                guard k - 1 < 0x4000, let i = clusterUnits[k - 1].addrItem[b], clusterUnits[k - 1].offsets[i] < 0x1_0000 else {
                    throw OvlError("cannot rewrite: a cluster's thunk cannot name 0x\(String(b, radix: 16)) (at most 16,383 clusters)")
                }
                return 0x4000_0000 | UInt64(k - 1) << 16 | UInt64(clusterUnits[k - 1].offsets[i])
            case .localThunk:
                throw OvlError("internal: a local thunk referred to from outside its cluster")
            case .buffer(let b):
                let k = unitOf(b)
                guard k > 0, let i = clusterUnits[k - 1].addrItem[b] else { throw OvlError("internal: code at 0x\(String(b, radix: 16)) is in no cluster") }
                return bufferAt + UInt64(clusterUnits[k - 1].offsets[i])
            }
        }

        // 4. The clusters, linked at the buffer, placed in the store runs.
        var image = elf.bytes
        func put(_ bytes: [UInt8], at a: UInt64) {
            let o = Int(text.offset + (a - text.address))
            image.replaceSubrange(o..<(o + bytes.count), with: bytes)
        }
        var clusterAddr: [UInt64] = [], clusterBytes: [Int] = []
        var storeBytes = 0
        for u in clusterUnits {
            let bytes = try u.encode(base: bufferAt, resolve: resolve)
            guard bytes.count <= bufSize else { throw OvlError("internal: a cluster outgrew the buffer") }
            guard let r = storeRuns.firstIndex(where: { $0.1 - $0.0 >= UInt64(bytes.count) }) else {
                throw OvlError.file(elf.path, "has not enough int3 fill in .text for the overlay store (\(storeBytes) B placed so far); use a larger γ or core")
            }
            let a = storeRuns[r].0
            put(bytes, at: a)
            storeRuns[r].0 = a + UInt64(bytes.count)
            clusterAddr.append(a); clusterBytes.append(bytes.count)
            storeBytes += bytes.count
        }

        // 5. Thunks, tables, the manager.
        var thunks: [UInt8] = []
        let djmp = try msym("_dynamic_jmp"), dcall = try msym("_dynamic_call")
        func rel32(_ target: UInt64, _ next: UInt64) throws -> [UInt8] {
            let d = Int64(bitPattern: target &- next)
            guard d >= Int64(Int32.min), d <= Int64(Int32.max) else { throw OvlError("internal: a thunk out of reach") }
            return le(UInt64(UInt32(truncatingIfNeeded: d)), 4)
        }
        for (i, b) in builder.jumpThunks.enumerated() {
            let a = jthunkAt + UInt64(i * 15)
            thunks += [0x48, 0x8D, 0x64, 0x24, 0x80, 0x68] + le(UInt64(builder.thunkID[b]!), 4) + [0xE9] + (try rel32(djmp, a + 15))
        }
        for (i, b) in builder.callThunks.enumerated() {
            let a = cthunkAt + UInt64(i * 10)
            thunks += [0x68] + le(UInt64(builder.thunkID[b]!), 4) + [0xE9] + (try rel32(dcall, a + 10))
        }
        var entryBytes: [UInt8] = [], originBytes: [UInt8] = []
        for b in builder.thunkBlocks {
            let k = p.block(containing: b).map { chainCluster[Int(blockChain[$0])] } ?? -1
            if k < 0 {
                entryBytes += le(0xFFFF, 4) + le(0, 4)
            } else {
                let u = clusterUnits[Int(k)]
                entryBytes += le(UInt64(UInt16(k)), 4) + le(UInt64(u.offsets[u.addrItem[b]!]), 4)
            }
            originBytes += le(b, 8)
        }
        var tables: [UInt8] = []
        for k in 0..<clusterCount { tables += le(clusterAddr[k], 8) + le(UInt64(clusterBytes[k]), 8) }
        var clusterOrigin: [UInt8] = []
        var firstOf = [UInt64](repeating: 0, count: clusterCount)
        for ch in 0..<chainCluster.count where chainCluster[ch] >= 0 {
            let b0 = s.chains.blocks(of: ch).first!
            let f = p.functions[Int(p.blockFunction[b0])].address
            let k = Int(chainCluster[ch])
            if firstOf[k] == 0 || f < firstOf[k] { firstOf[k] = f }
        }
        for v in firstOf { clusterOrigin += le(v, 8) }

        var mbytes = linked.bytes
        let imageAt = Int(try msym("ovl_image") - managerAt)
        let fields: [UInt64] = [
            0x4c4e524b4c564f, bufferAt, UInt64(bufSize), entriesAt, UInt64(entries),
            jthunkAt, jthunkAt + UInt64(jcount * 15), cthunkAt, cthunkAt + UInt64(ccount * 10),
            UInt64(clusterCount), clusterAddrAt, countersAt, try msym("_ovl_return"), originAt, clusterOriginAt,
            try symbol("__preempt_count"), managerAt, bufferAt + UInt64(bufSize), ptePageAt,
        ]
        for (i, v) in fields.enumerated() { mbytes.replaceSubrange((imageAt + i * 8)..<(imageAt + i * 8 + 8), with: le(v, 8)) }
        put(mbytes, at: managerAt)
        put(thunks, at: jthunkAt)
        put(entryBytes, at: entriesAt)
        put(originBytes, at: originAt)
        put(tables, at: clusterAddrAt)
        put([UInt8](repeating: 0, count: clusterCount * 16), at: countersAt)
        put(clusterOrigin, at: clusterOriginAt)
        put([UInt8](repeating: 0xCC, count: bufSize), at: bufferAt)
        put([UInt8](repeating: 0, count: 4096), at: ptePageAt)

        // 6. The references, redirected.
        for r in refs {
            let dest: UInt64
            switch r.ref {
            case .jump(let t): dest = try resolve(.jumpThunk(t))
            case .call(let t): dest = try resolve(.callThunk(t))
            case .hook(let h): dest = try msym(h)
            }
            // PC-relative displacements and absolute addresses alike move by the distance
            // between the old and the new destination (32-bit fields wrap, as the CPU reads them).
            let new = readLE(image, r.fileOffset, r.size) &+ (dest &- r.old)
            image.replaceSubrange(r.fileOffset..<(r.fileOffset + r.size), with: le(new, r.size))
        }

        // Resident code bytes: executed from where they are.
        var residentBytes = 0
        for b in 0..<p.blockCount where chainCluster[Int(blockChain[b])] < 0 && !p.functions[Int(p.blockFunction[b])].isGap {
            residentBytes += Int(p.blockSize[b])
        }
        let memory = MemoryAccount(
            residentText: residentBytes, managerCode: Int(managerSize), thunks: thunks.count,
            managerData: entryBytes.count + originBytes.count + tables.count + clusterOrigin.count,
            managerZero: clusterCount * 16 + 4096, buffers: bufSize, exact: true,
            note: "measured on the kernel ovl rewrite writes: resident code where the linker put it, the manager, thunks and tables in .text's int3 fill" + (failed.isEmpty ? "" : "; \(failed.count) cluster\(failed.count == 1 ? "" : "s") kept resident"),
            clusterBytes: clusterBytes)
        var result = RewriteResult(
            image: image, chainCluster: chainCluster, clusterCount: clusterCount, demotedClusters: builder.demoted,
            clusterBytes: clusterBytes, memory: memory, storeBytes: storeBytes,
            originalTextBytes: p.codeBytes, directCallsFromBuffer: 0)
        result.kernelPinned = pinned.count
        var byReason: [String: (Int, Int)] = [:]
        for f in pinned {
            let r = why[f] ?? "pinned"
            byReason[r, default: (0, 0)].0 += 1
            byReason[r, default: (0, 0)].1 += p.functions[f].size
        }
        result.kernelPinReasons = byReason.map { RewriteResult.PinReason(reason: $0.key, functions: $0.value.0, bytes: $0.value.1) }
            .sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.reason < $1.reason }
        result.kernelNotes = failed
        return result
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] { var s = Set<Element>(); return filter { s.insert($0).inserted } }
}

extension Builder {
    /// The cluster part of `prepare` for a kernel: clusters laid out for the buffer; a
    /// cluster that outgrows it, or holds code the rewriter cannot move, stays resident.
    mutating func prepareKernel(failed: inout [String]) throws {
        reach = CallReach(callGraph) { unit(ofBlock: Int32($0)) }
        var clusterChains = [[Int32]](repeating: [], count: clusterCount)
        for ch in 0..<chainCluster.count where chainCluster[ch] >= 0 { clusterChains[Int(chainCluster[ch])].append(Int32(ch)) }
        let bufSize = s.config.bufferSize
        for k in 0..<clusterCount where !clusterChains[k].isEmpty {
            localThunkUnits.insert(k + 1)
            do {
                var u = try buildUnit(k + 1, chains: clusterChains[k])
                if u.size > bufSize {
                    let own = u.localThunkItem.keys.sorted { a, b in a.call != b.call ? !a.call : a.block < b.block }
                    var freed = 0, shared = Set<CodeUnit.LocalThunkKey>()
                    for key in own where freed < u.size - bufSize { shared.insert(key); freed += key.call ? 10 : 15 }
                    sharedThunkTargets[k + 1] = shared
                    u = try buildUnit(k + 1, chains: clusterChains[k])
                    if u.size > bufSize {
                        localThunkUnits.remove(k + 1); sharedThunkTargets[k + 1] = nil
                        u = try buildUnit(k + 1, chains: clusterChains[k])
                    }
                }
                if u.size > bufSize { demoted.append(k) }
            } catch {
                failed.append("cluster \(k): \(error)")
                demoted.append(k)
            }
            if demoted.last == k { for ch in clusterChains[k] { chainCluster[Int(ch)] = -1 } }
        }
        var newID = [Int32](repeating: -1, count: clusterCount)
        var oldIDs: [Int] = []
        var n: Int32 = 0
        for k in 0..<clusterCount where !clusterChains[k].isEmpty && !demoted.contains(k) { newID[k] = n; oldIDs.append(k); n += 1 }
        for ch in 0..<chainCluster.count where chainCluster[ch] >= 0 { chainCluster[ch] = newID[Int(chainCluster[ch])] }
        localThunkUnits = Set(localThunkUnits.compactMap { u in newID[u - 1] >= 0 ? Int(newID[u - 1]) + 1 : nil })
        var renumbered: [Int: Set<CodeUnit.LocalThunkKey>] = [:]
        for (u, keys) in sharedThunkTargets where newID[u - 1] >= 0 { renumbered[Int(newID[u - 1]) + 1] = keys }
        sharedThunkTargets = renumbered
        clusterCount = Int(n)
        reach = CallReach(callGraph) { unit(ofBlock: Int32($0)) }
        thunkID = [:]; thunkBlocks = []; jumpThunks = []; callThunks = []; jumpThunkIndex = [:]; callThunkIndex = [:]
        clusterUnits = []
        for k in 0..<clusterCount {
            let u = try buildUnit(k + 1, chains: clusterChains[oldIDs[k]])
            guard u.size <= bufSize else { throw OvlError("internal: cluster \(k) outgrew the buffer on its second layout") }
            clusterUnits.append(u)
        }
    }
}

/// Compiles and links the kernel overlay manager (`KernelManagerSource` + the rules) for
/// `-mcmodel=kernel`, everything in one blob (its data is written with CR0.WP clear).
struct KernelManagerLinker {
    let objects: [(name: String, bytes: [UInt8])]

    init() throws {
        let rules = try ManagerLinker.rulesDirectory()
        let flags = ["-ffreestanding", "-fno-pic", "-mcmodel=kernel", "-fno-stack-protector", "-mno-red-zone",
                     "-mgeneral-regs-only", "-Os", "-DOVL_MAX_BUFFERS=1", "-fno-asynchronous-unwind-tables",
                     "-fcf-protection=none", "-fno-jump-tables", "-fno-tree-loop-distribute-patterns", "-I", rules + "/include"]
        objects = try ManagerLinker.compile(KernelManagerSource.text, named: "kmanager", flags: flags, rules: rules)
    }

    struct Linked { var bytes: [UInt8]; var symbols: [String: UInt64] }

    func link(at address: UInt64, symbols: [String: UInt64]) throws -> Linked {
        let script = """
        SECTIONS {
          .text 0x\(String(address, radix: 16)) : { *(.text .text.*) *(.rodata .rodata.*) *(.data .data.*) *(.bss .bss.* COMMON) }
          /DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) }
        }
        """
        let defs = symbols.sorted { $0.key < $1.key }.flatMap { ["--defsym", "\($0.key)=0x\(String($0.value, radix: 16))"] }
        let elf = try ManagerLinker.link(objects, script: script, extra: defs)
        guard let t = elf.section(named: ".text") else { throw OvlError("linking the kernel overlay manager produced no .text") }
        var syms: [String: UInt64] = [:]
        for s in elf.symbols where !s.name.isEmpty && s.sectionIndex != 0 { syms[s.name] = s.value }
        return Linked(bytes: Array(elf.contents(of: t)), symbols: syms)
    }
}
