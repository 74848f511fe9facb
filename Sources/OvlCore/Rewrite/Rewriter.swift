import Foundation

/// What a rewrite produced: the image's bytes and what was measured on it.
public struct RewriteResult: Sendable {
    public var image: [UInt8]
    /// Cluster of each chain in the written image (-1 resident). Equal to the
    /// clustering's, except for clusters whose rewritten code outgrew the buffer, which
    /// were kept resident (`demotedClusters`, by the clustering's ids). Cluster ids are
    /// renumbered densely in that case.
    public var chainCluster: [Int32]
    public var clusterCount: Int
    public var demotedClusters: [Int]
    /// Bytes of each cluster as written (what one load copies).
    public var clusterBytes: [Int]
    /// What the image occupies in memory, part by part.
    public var memory: MemoryAccount
    public var storeBytes: Int
    public var originalTextBytes: Int
    /// Calls in buffer code that go straight to their callee because it cannot load
    /// another cluster before it returns (`CallReach`); the others go through the manager.
    public var directCallsFromBuffer: Int = 0
    /// A kernel (`KernelRewriter`): functions kept resident because they cannot move, and
    /// clusters kept resident because their code could not be moved, with why.
    public var kernelPinned: Int? = nil
    public var kernelNotes: [String] = []
    /// A kernel: the functions kept resident by why (the first reason found), largest first.
    public var kernelPinReasons: [PinReason] = []
    public struct PinReason: Sendable, Encodable { public var reason: String; public var functions: Int; public var bytes: Int }
    public var managerCodeBytes: Int { memory.managerCode }
    public var thunkBytes: Int { memory.thunks }
    public var residentTextBytes: Int { memory.residentText }
    public var managerDataBytes: Int { memory.managerData }
    public var managerZeroBytes: Int { memory.managerZero }
    public var bufferBytes: Int { memory.buffers }
    /// Code that stays in memory: manager code, thunks and resident text.
    public var residentCodeBytes: Int { managerCodeBytes + thunkBytes + residentTextBytes }
    /// Resident code + buffers + manager data.
    public var totalMemoryBytes: Int { memory.total }
}

/// Writes the overlaid image (paper §3.3): resident code compacted into a new text,
/// each cluster linked at the code buffer's address and put in the overlay store, every
/// transfer that may enter a cluster sent through the overlay manager, every code
/// pointer (found through `--emit-relocs` relocations) redirected.
///
/// Transfers keep their size: `call f` becomes `call T` where the call thunk T is
/// `push $id; jmp _dynamic_call`, and `jmp`/`jcc` to another cluster target a jump
/// thunk `lea -128(%rsp),%rsp; push $id; jmp _dynamic_jmp`. One thunk serves every
/// transfer to its target. In buffer code every call goes through a call thunk (even to
/// resident or same-cluster code: the callee may load another cluster before it
/// returns), and `call *x` becomes `push x; call _dynamic_call_ind` (+5 bytes). So a
/// cluster grows only by short branches relaxed to long ones and by its indirect calls,
/// less than `StubModel` charges, and a cluster the coalescer fitted in the buffer fits.
public enum Rewriter {
    /// The smallest code buffer the rewriter accepts.
    public static let minimumBufferSize = 64

    /// Refuses images the rewriter cannot handle, with what is missing and how to fix it.
    public static func check(_ elf: ELFFile) throws {
        if elf.type == ELFFile.ET_DYN {
            let what = elf.isDynamicallyLinked ? "position-independent and dynamically linked (a PIE)" : "position-independent (PIE or shared object)"
            throw OvlError.file(elf.path, "is \(what); the rewriter handles static non-PIE executables: relink with -static -no-pie -Wl,--emit-relocs")
        }
        if elf.isDynamicallyLinked || elf.section(named: ".dynamic") != nil {
            throw OvlError.file(elf.path, "is dynamically linked; the rewriter handles static executables: relink with -static -no-pie -Wl,--emit-relocs")
        }
        if elf.symbols.contains(where: { $0.name == "start_kernel" && $0.isFunction }) {
            // `ovl rewrite` hands kernels to KernelRewriter; this path (the memory figure of an
            // analysis) estimates them by the user-space rules instead of laying out a kernel.
            throw OvlError.file(elf.path, "is a Linux kernel: ovl rewrite writes it with the kernel overlay manager (KernelRewriter), which also keeps resident what the kernel's tables pin, so the written kernel holds more than this estimate (see Samples/linux/README.md)")
        }
        try checkSegments(elf)
        if !elf.hasCodeRelocations {
            throw OvlError.file(elf.path, "has no relocations for its code, so code pointers cannot be found; relink with -Wl,--emit-relocs (analysis still works without them)")
        }
    }

    /// The loadable segments must lie inside the file and the address space, as the
    /// kernel's loader requires; the layout of the new image is computed from them.
    static func checkSegments(_ elf: ELFFile) throws {
        let fileSize = UInt64(elf.bytes.count)
        let loads = elf.programHeaders.enumerated().filter { $0.element.type == ELFFile.PT_LOAD }
        guard !loads.isEmpty else { throw OvlError.file(elf.path, "has no loadable segment (PT_LOAD)") }
        for (i, ph) in loads {
            func bad(_ why: String) -> OvlError {
                OvlError.file(elf.path, "program header \(i) (PT_LOAD at 0x\(String(ph.virtualAddress, radix: 16))) \(why); the image is damaged")
            }
            let (fileEnd, o1) = ph.offset.addingReportingOverflow(ph.fileSize)
            if o1 || fileEnd > fileSize {
                throw bad("has file bytes 0x\(String(ph.offset, radix: 16))+0x\(String(ph.fileSize, radix: 16)) beyond the file's end (\(fileSize) bytes)")
            }
            let (_, o2) = ph.virtualAddress.addingReportingOverflow(ph.memorySize)
            if o2 || ph.virtualAddress + ph.memorySize > 1 << 47 {
                throw bad("ends beyond the user address space (size 0x\(String(ph.memorySize, radix: 16)))")
            }
            if ph.fileSize > ph.memorySize { throw bad("has more file bytes than memory (0x\(String(ph.fileSize, radix: 16)) > 0x\(String(ph.memorySize, radix: 16)))") }
            if ph.offset > ph.virtualAddress { throw bad("has a file offset 0x\(String(ph.offset, radix: 16)) above its address") }
            if ph.alignment > 1 && (ph.virtualAddress &- ph.offset) % min(ph.alignment, 0x1000) != 0 {
                throw bad("has an address and file offset that disagree modulo the page size")
            }
        }
    }

    /// Everything `rewrite` refuses before it starts.
    static func checkConfiguration(_ s: Session) throws {
        let refusal = s.imageRefusal
        if let e = refusal.image { throw e }
        guard s.config.bufferSize >= Rewriter.minimumBufferSize else {
            throw OvlError("the code buffer (\(s.config.bufferSize) B) is too small for the overlay manager: it needs at least \(Rewriter.minimumBufferSize) B (a smaller buffer holds no cluster worth a load)")
        }
        if let e = refusal.code { throw e }
    }

    /// Why this program cannot be rewritten whatever the configuration, if it cannot:
    /// its image (`check`), or code it could not decode. `Session.imageRefusal` keeps the
    /// answer: every memory figure asks, and the check reads the whole symbol table.
    static func imageRefusal(_ p: Program) -> (image: Error?, code: Error?) {
        var image: Error? = nil
        do { try check(p.elf) } catch { image = error }
        var code: Error? = nil
        if let f = p.functions.first(where: { $0.requiredResidentReason != nil && !$0.isGap }) {
            code = OvlError("cannot rewrite: \(f.name) is \(f.requiredResidentReason!)")
        }
        return (image, code)
    }

    public static func rewrite(session s: Session, clustering c: Clustering, storage: StorageBackend? = nil) throws -> RewriteResult {
        if KernelRewriter.isKernel(s.program.elf) { return try KernelRewriter.rewrite(session: s, clustering: c) }
        try checkConfiguration(s)
        let backend = storage ?? s.config.storage
        let linker = try ManagerLinker(buffers: s.config.buffers)
        var b = Builder(session: s, clustering: c, backend: backend, linker: linker)
        return try b.build()
    }

    /// What the image `rewrite` would write for this clustering occupies in memory, part by
    /// part, without writing it: the same layout, with the overlay manager's sizes measured
    /// once per process. Throws what `rewrite` would throw.
    public static func account(session s: Session, clustering c: Clustering) throws -> MemoryAccount {
        try checkConfiguration(s)
        var b = Builder(session: s, clustering: c, backend: s.config.storage, linker: nil)
        b.memo = s.rewriteUnits
        b.sizesOnly = true
        s.rewriteUnits.beginLayout()
        return try b.plan()
    }

    /// The smallest buffer that holds the largest chain (with stubs, as the coalescer
    /// counts it): the stress configuration of the tests and benchmarks.
    public static func smallestBuffer(_ s: Session) -> Int {
        var largest = 0
        for ch in 0..<s.chains.count {
            largest = max(largest, Int(s.graph.chainBytes[ch]) + Int(s.graph.chainIndirectStubBytes[ch]))
        }
        // Exits of a chain cost stubs too; a generous allowance keeps the chain loadable.
        return largest + 64
    }
}

struct Builder {
    let s: Session
    let p: Program
    let elf: ELFFile
    let c: Clustering
    let backend: StorageBackend
    /// Nil when only planning (`Rewriter.account`).
    let linker: ManagerLinker?
    /// Units laid out for earlier clusterings of this session (`Rewriter.account` only).
    var memo: UnitMemo? = nil
    /// What the unit being laid out asks and leaves behind, while `memo` is set.
    var trace: UnitTrace? = nil
    var tracedUnit = 0
    /// What the last unit `buildUnit` laid out asked and left (nil when it was taken
    /// from the memo), while `memo` is set.
    var lastTrace: UnitTrace? = nil
    /// Writing a kernel (`KernelRewriter`): every call in buffer code goes through the
    /// manager, since any callee may sleep and let another task replace the buffer.
    var kernel = false

    /// Final cluster per chain (-1 resident).
    var chainCluster: [Int32]
    var clusterCount: Int
    var demoted: [Int] = []
    var hooked: [Int32] = []  // blocks that get the exit hook (one or two: searched in order)
    /// Addresses RIP-relative instructions refer to outside the code: bases of
    /// PC-relative jump tables among them.
    var ripDataTargets = Set<UInt64>()
    /// Branch targets inside an instruction, after its prefixes (glibc's `je 1f; lock;
    /// 1: cmpxchg`): the instruction is emitted as its prefixes and the rest.
    var splitPoints = Set<UInt64>()

    var units: [CodeUnit] = []       // 0 = resident, k + 1 = cluster k
    /// Clusters whose transfers out go through thunks of their own (in the cluster, so in
    /// the overlay store rather than in memory). A cluster that would outgrow the buffer
    /// that way shares the resident thunks instead.
    var localThunkUnits = Set<Int>()
    /// Targets whose thunk stays resident although their cluster has thunks of its own:
    /// just enough of them for the cluster to fit the buffer.
    var sharedThunkTargets: [Int: Set<CodeUnit.LocalThunkKey>] = [:]
    /// Units are laid out for their figures only (the memory account): their items are
    /// dropped once laid out, and kept meanwhile in `scratch`.
    var sizesOnly = false
    var scratch = CodeUnit()
    /// The local thunks the unit being built needs, in order.
    var pendingLocalThunks: [CodeUnit.LocalThunkKey] = []
    /// Set by `prepare`: the resident text, the clusters, and the code pointers in data.
    var resident = CodeUnit()
    var clusterUnits: [CodeUnit] = []
    var dataPatches: [(fileOffset: Int, size: Int, ref: CodeRef, pcRelativeFrom: UInt64?)] = []
    /// Which units each call may enter (recomputed whenever `chainCluster` changes).
    var reach: CallReach?
    /// Executed blocks that a later block of their function branches back to and that the
    /// compiler put on a 16-byte boundary.
    var hotLoopHeads = Set<Int32>()
    /// Calls in buffer code that go straight to their callee (counted on the final layout).
    var directCalls = 0
    var thunkID: [UInt64: UInt32] = [:]
    var thunkBlocks: [UInt64] = []
    var jumpThunks: [UInt64] = []
    var callThunks: [UInt64] = []
    var jumpThunkIndex: [UInt64: Int] = [:]
    var callThunkIndex: [UInt64: Int] = [:]
    /// Relocations applying to executable sections, by field address.
    var codeRelocs: [UInt64: ELFFile.Relocation] = [:]
    let codeRanges: [(UInt64, UInt64)]

    init(session: Session, clustering: Clustering, backend: StorageBackend, linker: ManagerLinker?) {
        s = session; p = session.program; elf = session.program.elf; c = clustering
        self.backend = backend; self.linker = linker
        chainCluster = clustering.chainCluster
        clusterCount = clustering.clusterCount
        let basis = RewriteBasis.of(session)
        codeRanges = basis.codeRanges
        splitPoints = basis.splitPoints
        splitSorted = basis.splitSorted
        codeRelocs = basis.codeRelocs
        relocOffsets = basis.relocOffsets
        blockFirstReloc = basis.blockFirstReloc
        hotLoopHeads = basis.hotLoopHeads
        callGraph = basis.callGraph
    }
    /// The block graph `CallReach` joins units over.
    let callGraph: CallReach.Graph

    /// Split points, sorted (`splitPoints`), and the field addresses of `codeRelocs`,
    /// sorted: an instruction looks up only what lies inside it.
    let splitSorted: [UInt64]
    let relocOffsets: [UInt64]
    /// For each block, the first of `relocOffsets` at or after its start.
    let blockFirstReloc: [UInt32]
    /// The section the last instruction was in.
    var lastSection: ELFFile.Section?

    /// The first index of `sorted` whose value is at least `x`.
    static func lowerBound(_ sorted: [UInt64], _ x: UInt64) -> Int {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The section holding `a` (the last one asked for, usually).
    mutating func section(containing a: UInt64) -> ELFFile.Section? {
        if let s = lastSection, s.contains(a) { return s }
        lastSection = elf.section(containing: a)
        return lastSection
    }

    func inCode(_ a: UInt64) -> Bool { codeRanges.contains { a >= $0.0 && a < $0.1 } }

    /// Whether a relocation names code as such (a function, or a section plus offset) rather
    /// than a plain symbol whose value happens to lie in code (`_etext`).
    static func pointsAtCode(_ r: ELFFile.Relocation, _ elf: ELFFile) -> Bool {
        let i = Int(r.symbolIndex)
        guard i > 0, i < elf.symbols.count else { return false }
        return elf.symbols[i].isFunction || elf.symbols[i].isSection
    }

    func unit(ofBlock b: Int32) -> Int { Int(chainCluster[Int(s.chains.blockChain[Int(b)])]) + 1 }
    func unit(of a: UInt64) -> Int { unit(ofBlock: Int32(p.block(containing: a)!)) }

    // MARK: What a unit asks of the clustering

    /// The unit of `t`, asked while building a unit: noted in `trace`, as whether it is
    /// the unit being built and whether it is resident (all the items compare it with).
    mutating func unitAsked(_ t: UInt64) -> Int {
        unitAsked(block: Int32(p.block(containing: t)!))
    }

    /// The same for block `b`.
    mutating func unitAsked(block b: Int32) -> Int {
        let tu = unit(ofBlock: b)
        trace?.queries.append(.unit(b, UnitTrace.relation(tracedUnit, tu)))
        return tu
    }

    /// `reach.staysIn`, asked while building a unit.
    mutating func staysAsked(_ u: Int, callingBlock b: Int) -> Bool {
        let stays = reach!.staysIn(u, callingBlock: b)
        trace?.queries.append(.stays(Int32(b), stays))
        return stays
    }

    /// Whether unit `u`'s transfer to `b` goes through a thunk of its own, asked while
    /// building a unit.
    mutating func usesLocalThunkAsked(_ u: Int, _ b: UInt64, call: Bool) -> Bool {
        let local = usesLocalThunk(u, b, call: call)
        trace?.queries.append(.local(b, call: call, local))
        return local
    }

    /// Whether the unit `t` recorded would be built the same now: every question it asked
    /// gets the same answer.
    func answersMatch(_ t: UnitTrace, unit u: Int) -> Bool {
        for q in t.queries {
            switch q {
            case .unit(let b, let r): if UnitTrace.relation(u, unit(ofBlock: b)) != r { return false }
            case .stays(let b, let stays): if reach!.staysIn(u, callingBlock: Int(b)) != stays { return false }
            case .local(let b, let call, let local): if usesLocalThunk(u, b, call: call) != local { return false }
            }
        }
        return true
    }

    /// Leaves behind what building the unit `t` recorded left: its thunks (in the same
    /// order, so they get the same numbers), jump-table bases and direct calls.
    mutating func replayEffects(_ t: UnitTrace) {
        for e in t.effects {
            switch e {
            case .jumpThunk(let b): needJumpThunk(b)
            case .callThunk(let b): needCallThunk(b)
            case .ripData(let a): ripDataTargets.insert(a)
            case .directCall: directCalls += 1
            case .ownThunk: break
            }
        }
    }

    // MARK: Items

    /// Checks that `a` is an instruction the rewriter emits.
    func blockAt(_ a: UInt64, from: UInt64) throws -> UInt64 {
        guard p.block(containing: a) != nil, p.isInstructionStart(a) || splitPoints.contains(a) else {
            throw OvlError("cannot rewrite: 0x\(String(from, radix: 16)) refers to code at 0x\(String(a, radix: 16)), which is not the start of an instruction")
        }
        return a
    }

    /// A code pointer: resident code's new address, or cold code's jump thunk.
    mutating func canonical(_ b: UInt64) -> CodeRef {
        if unitAsked(b) == 0 { return .code(b) }
        needJumpThunk(b)
        return .jumpThunk(b)
    }

    mutating func needID(_ b: UInt64) {
        if thunkID[b] == nil { thunkID[b] = UInt32(thunkBlocks.count); thunkBlocks.append(b) }
    }
    mutating func needJumpThunk(_ b: UInt64) {
        trace?.effects.append(.jumpThunk(b))
        needID(b)
        if jumpThunkIndex[b] == nil { jumpThunkIndex[b] = jumpThunks.count; jumpThunks.append(b) }
    }
    mutating func needCallThunk(_ b: UInt64) {
        trace?.effects.append(.callThunk(b))
        needID(b)
        if callThunkIndex[b] == nil { callThunkIndex[b] = callThunks.count; callThunks.append(b) }
    }

    static func skipPrefixes<C: RandomAccessCollection>(_ bytes: C) -> Int where C.Element == UInt8, C.Index == Int {
        var i = 0
        while i < bytes.count, [0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65].contains(bytes[i]) { i += 1 }
        while i < bytes.count, bytes[i] & 0xF0 == 0x40 { i += 1 }
        return i
    }

    /// Appends block `b`'s items, as unit `u` emits them, to `out`.
    mutating func items(forBlock b: Int32, unit u: Int, into out: inout [CodeItem], extras: inout [ItemExtra]) throws {
        let first = out.count
        if hooked.contains(b) { out.append(CodeItem(kind: .exitHook, original: p.blockStart[Int(b)], bytes: [])) }
        let inBuffer = u > 0
        // Resident hot loops keep the 16-byte alignment the compiler gave them (clusters
        // stay compact: their size is what the coalescer fitted into the buffer).
        let alignHere = !inBuffer && hotLoopHeads.contains(b)
        // The block's instructions as the decoding pass kept them (no decoding again).
        let firstInstruction = p.firstInstruction(ofBlock: Int(b))
        let instructionCount = Int(p.blockInstructionCount[Int(b)])
        // The split points and relocated fields from the block's start on: the
        // instructions come in address order, so each takes up where the last left off.
        let blockAddress = p.blockStart[Int(b)]
        var split = Builder.lowerBound(splitSorted, blockAddress + 1)
        var ri = Int(blockFirstReloc[Int(b)])
        var n = 0
        while n < instructionCount {
            let whole = p.instruction(at: firstInstruction + n)
            n += 1
            var ins = whole
            while split < splitSorted.count && splitSorted[split] < whole.address + 1 { split += 1 }
            if split < splitSorted.count && splitSorted[split] < whole.address + UInt64(max(1, whole.length)) {
                let cut = Int(splitSorted[split] - whole.address)
                let sec = section(containing: whole.address)!
                let off = Int(sec.offset + (whole.address - sec.address))
                let prefix = Array(elf.bytes[off..<(off + cut)])
                guard Builder.skipPrefixes(prefix) == cut,
                      let rest = elf.bytes.withUnsafeBytes({ X86Decoder.decode(UnsafeRawBufferPointer(rebasing: $0[(off + cut)..<(off + whole.length)]), at: whole.address + UInt64(cut)) }),
                      rest.length == whole.length - cut else {
                    throw OvlError("cannot rewrite: a branch targets the middle of the instruction at 0x\(String(whole.address, radix: 16))")
                }
                out.append(CodeItem(kind: .raw, original: whole.address, bytes: InstructionBytes(prefix)))
                ins = rest
            }
            guard let sec = section(containing: ins.address) else { throw OvlError("no section holds 0x\(String(ins.address, radix: 16))") }
            let off = Int(sec.offset + (ins.address - sec.address))
            precondition(off >= 0 && off + ins.length <= elf.bytes.count, "an instruction outside its section")
            let bytes = elf.bytes.withUnsafeBytes { InstructionBytes(copying: $0.baseAddress! + off, count: ins.length) }
            let at = ins.address
            switch ins.flow {
            case _ where ins.flow.isDirect && ins.immSize > 0 && !inCode(ins.target):
                // A branch out of the code (a call to an undefined weak function, at 0):
                // kept pointing where it pointed.
                let op = Builder.skipPrefixes(bytes)
                guard ins.flow == .call || (ins.flow == .jump && bytes[op] == 0xE9) || (bytes[op] == 0x0F) else {
                    throw OvlError("cannot rewrite: short branch at 0x\(String(at, radix: 16)) leaves the code")
                }
                var it = CodeItem(kind: ins.flow == .call ? .call : ins.flow == .jump ? .jump : .conditional(bytes[op + 1] & 0xF), original: at, bytes: [])
                it.long = true
                it.target = .fixed(ins.target)
                if kernel && inBuffer && ins.flow == .call {
                    // A kernel's code outside the analysed sections (.init.text) is resident,
                    // and what it calls may replace the buffer: the call goes through the
                    // manager, so its return finds this cluster again.
                    if usesLocalThunkAsked(u, ins.target, call: true) { it.target = localThunk(ins.target, call: true) }
                    else { needCallThunk(ins.target); it.target = .callThunk(ins.target) }
                }
                out.append(it)
                continue
            case _ where ins.flow.isDirect && ins.immSize > 0:
                // A direct transfer ends its block, and the program knows the block at
                // its target when one starts there (an instruction start, so no search).
                let known = n == instructionCount && p.blockTarget[Int(b)] >= 0 && p.blockTargetAddress[Int(b)] == ins.target
                let t = known ? ins.target : try blockAt(ins.target, from: at)
                let tu = known ? unitAsked(block: p.blockTarget[Int(b)]) : unitAsked(t)
                let op = Builder.skipPrefixes(bytes)
                if ins.flow == .call {
                    var it = CodeItem(kind: .call, original: at, bytes: [])
                    if !kernel && inBuffer && (tu == u || tu == 0) && staysAsked(u, callingBlock: p.block(containing: t)!) {
                        // The callee cannot take this cluster out of the buffer: a plain call.
                        it.target = .code(t)
                        directCalls += 1
                        trace?.effects.append(.directCall)
                    } else if inBuffer && usesLocalThunkAsked(u, t, call: true) {
                        it.target = localThunk(t, call: true)
                    } else if inBuffer || tu != 0 { needCallThunk(t); it.target = .callThunk(t) } else { it.target = .code(t) }
                    out.append(it)
                    continue
                }
                var it: CodeItem
                if ins.flow == .jump {
                    it = CodeItem(kind: .jump, original: at, bytes: [])
                    it.long = bytes[op] == 0xE9
                } else if bytes[op] >= 0x70 && bytes[op] <= 0x7F {
                    it = CodeItem(kind: .conditional(bytes[op] & 0xF), original: at, bytes: [])
                } else if bytes[op] == 0x0F && op + 1 < bytes.count && bytes[op + 1] & 0xF0 == 0x80 {
                    it = CodeItem(kind: .conditional(bytes[op + 1] & 0xF), original: at, bytes: [])
                    it.long = true
                } else {
                    it = CodeItem(kind: .shortOnly, original: at, bytes: bytes)
                }
                if tu == u { it.target = .code(t) }
                else if tu == 0 { it.target = .code(t); if it.kind != .shortOnly { it.long = true } }
                else if inBuffer && usesLocalThunkAsked(u, t, call: false) { it.target = localThunk(t, call: false); if it.kind != .shortOnly { it.long = true } }
                else { needJumpThunk(t); it.target = .jumpThunk(t); if it.kind != .shortOnly { it.long = true } }
                if it.kind == .shortOnly && tu != u {
                    throw OvlError("cannot rewrite: loop/jrcxz at 0x\(String(at, radix: 16)) leaves its cluster")
                }
                out.append(it)
                continue
            case .far:
                throw OvlError("cannot rewrite: far transfer at 0x\(String(at, radix: 16))")
            default:
                break
            }
            var it = CodeItem(kind: .raw, original: at, bytes: bytes)
            if ins.flow == .indirectCall && inBuffer {
                let op = Builder.skipPrefixes(bytes)
                guard op + 1 < bytes.count, bytes[op] == 0xFF, (bytes[op + 1] >> 3) & 7 == 2 else {
                    throw OvlError("cannot rewrite: unexpected indirect call encoding at 0x\(String(at, radix: 16))")
                }
                it.kind = .pushIndirect
                it.bytes[op + 1] = (bytes[op + 1] & 0xC7) | (6 << 3)
            }
            var extra = ItemExtra(), hasExtra = false
            if ins.memIsRIPRelative && ins.dispSize == 4 {
                hasExtra = true
                let target = at &+ UInt64(ins.length) &+ UInt64(bitPattern: ins.disp)
                it.ripOffset = Int8(ins.dispOffset)
                if kernel, let r = codeRelocs[at + UInt64(ins.dispOffset)], !Builder.pointsAtCode(r, elf) {
                    // A kernel's address computation from a plain symbol (`_etext`): kept.
                    extra.ripTarget = .fixed(target)
                } else if inCode(target) {
                    extra.ripTarget = canonical(try blockAt(target, from: at))
                } else {
                    extra.ripTarget = .fixed(target)
                    ripDataTargets.insert(target)
                    trace?.effects.append(.ripData(target))
                }
            }
            while ri < relocOffsets.count && relocOffsets[ri] < at { ri += 1 }
            while ri < relocOffsets.count && relocOffsets[ri] < at + UInt64(ins.length) {
                let fieldAt = relocOffsets[ri]
                ri += 1
                let r = codeRelocs[fieldAt]!
                let size: Int
                switch r.type {
                case ELFFile.R_X86_64_64: size = 8
                case ELFFile.R_X86_64_32, ELFFile.R_X86_64_32S: size = 4
                default: continue
                }
                guard inCode(r.target) else { continue }
                // In a kernel an absolute reference into code that is no instruction is an
                // address computed from a symbol (`_text + 0xfff`): it keeps its value.
                if kernel && ((!p.isInstructionStart(r.target) && !splitPoints.contains(r.target)) || !Builder.pointsAtCode(r, elf)) { continue }
                guard extra.absolute.append((Int(fieldAt - at), size, canonical(try blockAt(r.target, from: at)))) else {
                    throw OvlError("cannot rewrite: more than two address fields in the instruction at 0x\(String(at, radix: 16))")
                }
                hasExtra = true
            }
            if hasExtra {
                it.extra = Int32(extras.count)
                extras.append(extra)
            }
            out.append(it)
        }
        if alignHere && out.count > first { out[first].aligned = true }
        // A chain's last block that would run on into code placed elsewhere: an explicit jump.
        let k = p.blockKind[Int(b)]
        let chain = Int(s.chains.blockChain[Int(b)])
        let lastOfChain = s.chains.blocks(of: chain).last == Int(b)
        if lastOfChain && (k == .fallThrough || k == .conditionalJump) {
            let end = p.blockStart[Int(b)] + UInt64(p.blockSize[Int(b)])
            if let nb = p.block(startingAt: end) {
                var it = CodeItem(kind: .jump, original: 0, bytes: [])
                let t = p.blockStart[nb], tu = unitAsked(t)
                it.long = true
                if tu == u || tu == 0 { it.target = .code(t) }
                else if inBuffer && usesLocalThunkAsked(u, t, call: false) { it.target = localThunk(t, call: false) }
                else { needJumpThunk(t); it.target = .jumpThunk(t) }
                out.append(it)
            }
        }
    }

    func usesLocalThunk(_ u: Int, _ b: UInt64, call: Bool) -> Bool {
        localThunkUnits.contains(u) && !(sharedThunkTargets[u]?.contains(CodeUnit.LocalThunkKey(block: b, call: call)) ?? false)
    }

    mutating func localThunk(_ b: UInt64, call: Bool) -> CodeRef {
        let k = CodeUnit.LocalThunkKey(block: b, call: call)
        trace?.effects.append(.ownThunk(b, call: call))
        if !pendingLocalThunks.contains(k) { pendingLocalThunks.append(k) }
        return .localThunk(b, call: call)
    }

    /// Unit `u` of `chains`: the one laid out before, when the session's memo holds one
    /// built from the same chains whose every question about the clustering gets the same
    /// answer now; else built and remembered.
    mutating func buildUnit(_ u: Int, chains: [Int32]) throws -> CodeUnit {
        guard let memo else { return try layUnit(u, chains: chains) }
        let key = UnitMemo.Key(inBuffer: u > 0, chains: chains)
        for (i, known) in memo.candidates(for: key).enumerated() where answersMatch(known.trace, unit: u) {
            replayEffects(known.trace)
            memo.took(key, i)
            lastTrace = nil
            return known.unit
        }
        trace = UnitTrace()
        tracedUnit = u
        defer { trace = nil }
        let unit = try layUnit(u, chains: chains)
        memo.remember(unit, trace: trace!, for: key)
        lastTrace = trace
        return unit
    }

    /// Unit `own`, laid out with a thunk of its own for every transfer out (and `trace`,
    /// what that asked and left), as it would be laid out with the targets in `shared`
    /// going through resident thunks instead. The branches to a thunk are long either way,
    /// so no item changes size: the transfers to shared targets change referent, their
    /// thunks leave the unit's end, and where each was used the trace asks for a resident
    /// thunk. Saves the first pass a second layout of every cluster that outgrew the buffer.
    static func sharing(_ own: CodeUnit, _ trace: UnitTrace, _ shared: Set<CodeUnit.LocalThunkKey>) throws -> (CodeUnit, UnitTrace) {
        guard own.sizesOnly else { throw OvlError("internal: thunks shared on a unit laid out to be written") }
        // The thunks are the unit's last items and nothing else changes size: the ones
        // kept follow the rest as before. A call through a shared thunk returns through
        // the manager as one through the unit's own did: the return sites stay.
        var u = CodeUnit()
        u.sizesOnly = true
        u.returnSites = own.returnSites
        u.thunkStart = own.thunkStart
        var end = own.thunkStart
        var item = own.localThunkItem.values.min() ?? 0
        for (k, _) in own.localThunkItem.sorted(by: { $0.value < $1.value }) where !shared.contains(k) {
            u.localThunkItem[k] = item
            item += 1
            end += k.call ? 10 : 15
        }
        u.size = end
        var t = UnitTrace()
        t.queries = trace.queries.map { q in
            if case .local(let b, let call, _) = q, shared.contains(.init(block: b, call: call)) { return .local(b, call: call, false) }
            return q
        }
        t.effects = trace.effects.map { e in
            if case .ownThunk(let b, let call) = e, shared.contains(.init(block: b, call: call)) { return call ? .callThunk(b) : .jumpThunk(b) }
            return e
        }
        return (u, t)
    }

    mutating func layUnit(_ u: Int, chains: [Int32]) throws -> CodeUnit {
        var unit = CodeUnit()
        pendingLocalThunks = []
        // About an item per 3 bytes of code (instructions average 3-4): room made once,
        // where growing copied the items and rehashed the table over and over.
        let bytes = chains.reduce(0) { $0 + Int(s.graph.chainBytes[Int($1)]) }
        if sizesOnly {
            // The items are dropped once the unit is laid out: the last unit's arrays and
            // table, emptied, take them, where fresh memory cost a page fault every 4 KB.
            swap(&unit.items, &scratch.items)
            swap(&unit.extras, &scratch.extras)
            swap(&unit.offsets, &scratch.offsets)
            swap(&unit.addrItem, &scratch.addrItem)
            unit.items.removeAll(keepingCapacity: true)
            unit.extras.removeAll(keepingCapacity: true)
            unit.addrItem.reset(expecting: bytes / 3 + 8)
        } else {
            unit.addrItem.reserveCapacity(bytes / 3 + 8)
        }
        unit.items.reserveCapacity(bytes / 3 + 8)
        for ch in chains {
            for bl in s.chains.blocks(of: Int(ch)) {
                let first = unit.items.count
                try items(forBlock: Int32(bl), unit: u, into: &unit.items, extras: &unit.extras)
                for i in first..<unit.items.count {
                    let original = unit.items[i].original
                    if original != 0 { unit.addrItem.insertIfAbsent(original, i) }
                }
            }
        }
        for k in pendingLocalThunks {
            unit.localThunkItem[k] = unit.items.count
            var it = CodeItem(kind: .localThunk(call: k.call), original: 0, bytes: [])
            it.target = .packed(k.block)
            unit.items.append(it)
        }
        pendingLocalThunks = []
        try unit.layout()
        unit.noteFigures()
        guard sizesOnly else { return unit }
        let figures = unit.sizesOnlyCopy()
        swap(&unit.items, &scratch.items)
        swap(&unit.extras, &scratch.extras)
        swap(&unit.offsets, &scratch.offsets)
        swap(&unit.addrItem, &scratch.addrItem)
        return figures
    }

    /// The targets of a cluster laid out with thunks of its own whose resident thunks it
    /// shares instead, so that it fits a buffer of `bufferSize` bytes: just enough of them
    /// (jump thunks first, the larger) or, failing that, all; and the bytes that frees.
    static func thunksToShare(_ u: CodeUnit, bufferSize: Int) -> (shared: Set<CodeUnit.LocalThunkKey>, freed: Int) {
        let own = u.localThunkItem.keys.sorted { a, b in a.call != b.call ? !a.call : a.block < b.block }
        var freed = 0, shared = Set<CodeUnit.LocalThunkKey>()
        for key in own where freed < u.size - bufferSize {
            shared.insert(key)
            freed += key.call ? 10 : 15
        }
        return (shared, freed)
    }

    /// Lays out on every core, into the memo, the units `prepare` is about to ask for and
    /// the memo does not hold: every cluster as the first pass lays it out (with thunks of
    /// its own, and also with just enough of them shared when that outgrows the buffer),
    /// and the resident text as the second pass lays it out when no cluster is demoted.
    /// Each is laid out by a copy of this builder and remembered with every question it
    /// asked of the clustering; the passes take a unit from the memo only where each
    /// answer still holds (a demotion changes some) and replay what it left behind in
    /// order, so the image is the one laid out a unit at a time. A unit that fails here is
    /// left to the passes, which fail on it in their own order.
    mutating func layAhead(_ clusterChains: [[Int32]], bufferSize: Int) {
        guard memo != nil, clusterCount > 0 else { return }
        let cores = Cores.active
        guard cores > 1 else { return }
        var residentChains: [Int32] = []
        for ch in 0..<chainCluster.count where chainCluster[ch] < 0 { residentChains.append(Int32(ch)) }
        var jobs: [(unit: Int, chains: [Int32], bytes: Int)] = [(0, residentChains, 0)]
        for k in 0..<clusterCount where !clusterChains[k].isEmpty { jobs.append((k + 1, clusterChains[k], 0)) }
        for j in jobs.indices { jobs[j].bytes = jobs[j].chains.reduce(0) { $0 + Int(s.graph.chainBytes[Int($1)]) } }
        jobs.sort { $0.bytes > $1.bytes }  // the largest first, so that the cores finish together

        final class Shared: @unchecked Sendable {
            let template: Builder
            let jobs: [(unit: Int, chains: [Int32], bytes: Int)]
            var next = 0
            let lock = NSLock()
            init(_ b: Builder, _ jobs: [(unit: Int, chains: [Int32], bytes: Int)]) { template = b; self.jobs = jobs }
            func take() -> Int? {
                lock.lock(); defer { lock.unlock() }
                guard next < jobs.count else { return nil }
                next += 1
                return next - 1
            }
        }
        var template = self
        template.localThunkUnits = Set(1...clusterCount)
        let shared = Shared(template, jobs)
        DispatchQueue.concurrentPerform(iterations: min(cores, jobs.count)) { _ in
            var b = shared.template
            while let j = shared.take() {
                let (u, chains, _) = shared.jobs[j]
                guard let unit = try? b.buildUnit(u, chains: chains) else { continue }
                guard u > 0, unit.size > bufferSize, let own = b.lastTrace, let memo = b.memo else { continue }
                let (keys, freed) = Builder.thunksToShare(unit, bufferSize: bufferSize)
                guard unit.size - freed <= bufferSize,
                      let (fitted, trace) = try? Builder.sharing(unit, own, keys), fitted.size == unit.size - freed else { continue }
                memo.remember(fitted, trace: trace, for: UnitMemo.Key(inBuffer: true, chains: chains))
            }
        }
    }

    // MARK: Whole image

    /// Decides where every chain goes and lays out every unit: everything that fixes the
    /// image's sizes. `layout` and `emit` follow.
    mutating func prepare() throws {
        // The exit hook lives in `_Exit`/`_exit`, kept resident.
        let hookNames = ["_Exit", "_exit"]
        var hookFunctions: [Int] = []
        for n in hookNames { if let f = p.functionIndex(named: n), p.functions[f].blockCount > 0 { hookFunctions.append(f) } }
        guard !hookFunctions.isEmpty else { throw OvlError("cannot rewrite: no _Exit or _exit to hook the load counters into") }
        for f in hookFunctions {
            for bl in p.functions[f].blocks { chainCluster[Int(s.chains.blockChain[bl])] = -1 }
            if !hooked.contains(p.functions[f].firstBlock) { hooked.append(p.functions[f].firstBlock) }
        }
        // Signal handlers and everything the core set pins are resident in the clustering already.
        reach = CallReach(callGraph) { unit(ofBlock: Int32($0)) }

        // Clusters, laid out for the buffer; one that outgrew it stays resident.
        var clusterChains = [[Int32]](repeating: [], count: clusterCount)
        for ch in 0..<chainCluster.count where chainCluster[ch] >= 0 { clusterChains[Int(chainCluster[ch])].append(Int32(ch)) }
        let bufSize = s.config.bufferSize
        var oldIDs: [Int] = []
        layAhead(clusterChains, bufferSize: bufSize)
        // First pass: sizes (thunk bookkeeping is redone below with the final clustering).
        for k in 0..<clusterCount {
            localThunkUnits.insert(k + 1)
            // Laid out with a thunk of its own for every transfer out. Whose thunk a transfer
            // goes through changes no item's size (the branch to a thunk is long either way),
            // only the thunks at the unit's end: the size of the other two ways follows.
            let u = try buildUnit(k + 1, chains: clusterChains[k])
            var size = u.size
            if size > bufSize {
                let (shared, freed) = Builder.thunksToShare(u, bufferSize: bufSize)
                sharedThunkTargets[k + 1] = shared
                size -= freed
                if size > bufSize {
                    // Every thunk shared, as large as with none of its own: too large.
                    localThunkUnits.remove(k + 1)
                    sharedThunkTargets[k + 1] = nil
                } else if let memo, let own = lastTrace {
                    // The layout the second pass will ask for, unless a demotion changes
                    // what the cluster refers to (a unit taken from the memo had it made
                    // when it was first laid out).
                    let (fitted, trace) = try Builder.sharing(u, own, shared)
                    guard fitted.size == size else {
                        throw OvlError("internal: cluster \(k) with shared thunks is \(fitted.size) B, not the \(size) B its own thunks implied")
                    }
                    memo.remember(fitted, trace: trace, for: UnitMemo.Key(inBuffer: true, chains: clusterChains[k]))
                }
            }
            if size > bufSize || clusterChains[k].isEmpty {
                if !clusterChains[k].isEmpty { demoted.append(k) }
                for ch in clusterChains[k] { chainCluster[Int(ch)] = -1 }
            }
        }
        // Renumber densely.
        var newID = [Int32](repeating: -1, count: clusterCount)
        var n: Int32 = 0
        for k in 0..<clusterCount where !clusterChains[k].isEmpty && !demoted.contains(k) { newID[k] = n; oldIDs.append(k); n += 1 }
        for ch in 0..<chainCluster.count where chainCluster[ch] >= 0 { chainCluster[ch] = newID[Int(chainCluster[ch])] }
        localThunkUnits = Set(localThunkUnits.compactMap { u in newID[u - 1] >= 0 ? Int(newID[u - 1]) + 1 : nil })
        var renumbered: [Int: Set<CodeUnit.LocalThunkKey>] = [:]
        for (u, keys) in sharedThunkTargets where newID[u - 1] >= 0 { renumbered[Int(newID[u - 1]) + 1] = keys }
        sharedThunkTargets = renumbered
        clusterCount = Int(n)
        reach = CallReach(callGraph) { unit(ofBlock: Int32($0)) }
        directCalls = 0

        thunkID = [:]; thunkBlocks = []; jumpThunks = []; callThunks = []; jumpThunkIndex = [:]; callThunkIndex = [:]
        var residentChains: [Int32] = []
        for ch in 0..<chainCluster.count where chainCluster[ch] < 0 { residentChains.append(Int32(ch)) }
        resident = try buildUnit(0, chains: residentChains)
        clusterUnits = []
        for k in 0..<clusterCount {
            let u = try buildUnit(k + 1, chains: oldIDs.isEmpty ? [] : clusterChains[oldIDs[k]])
            guard u.size <= bufSize else { throw OvlError("internal: cluster \(k) outgrew the buffer on its second layout") }
            clusterUnits.append(u)
        }

        // Jump tables that only code of one cluster reads: their entries for cases in that
        // cluster hold buffer addresses (valid whenever the jump runs, since it runs from
        // the buffer), so a switch in cold code goes straight to its case; entries for
        // cases elsewhere keep their canonical address (resident code or a jump thunk).
        var clusterTableField: [UInt64: Int] = [:]  // entry address -> the cluster's unit
        var tableUsers: [UInt64: [Int32]] = [:]
        for (b, t) in p.jumpTables { tableUsers[t.address, default: []].append(b) }
        // Who else refers to each table: any reference but its jumps' own (another
        // instruction reading it, a pointer to it in data) keeps it canonical.
        var strangers = Set<UInt64>()
        for rs in elf.relocationSections where rs.appliesTo < elf.sections.count && elf.sections[rs.appliesTo].isAllocated {
            for r in rs.relocations where tableUsers[r.target] != nil {
                let own = p.block(containing: r.offset).map { tableUsers[r.target]!.contains(Int32($0)) } ?? false
                if !own { strangers.insert(r.target) }
            }
        }
        // With several buffers a cluster runs at more than one address: no such shortcut.
        for (address, users) in tableUsers where !strangers.contains(address) && s.config.buffers == 1 {
            let u = unit(ofBlock: users[0])
            guard u > 0, users.allSatisfy({ unit(ofBlock: $0) == u }) else { continue }
            let entries = users.map { p.jumpTables[$0]!.entries }.min()!
            for e in 0..<entries { clusterTableField[address + UInt64(8 * e)] = u }
        }

        // Code pointers in data.
        dataPatches = []
        let tableBases = ripDataTargets.sorted()
        for rs in elf.relocationSections where rs.appliesTo < elf.sections.count {
            let sec = elf.sections[rs.appliesTo]
            guard sec.isAllocated, !sec.isExecutable, sec.hasFileBytes else { continue }
            let unwind = sec.name == ".eh_frame" || sec.name == ".gcc_except_table" || sec.name == ".eh_frame_hdr"
            for r in rs.relocations where inCode(r.target) {
                let size: Int
                var pc: UInt64? = nil
                switch r.type {
                case ELFFile.R_X86_64_64: size = 8
                case ELFFile.R_X86_64_32, ELFFile.R_X86_64_32S: size = 4
                case ELFFile.R_X86_64_PC32: size = 4; pc = r.offset
                default: continue
                }
                if unwind { continue }  // unwind tables keep describing the original code
                guard sec.contains(r.offset) else { continue }
                if let pcAt = pc {
                    // A PC-relative jump table (`.long L - table`): the code adds the
                    // entry to the table's address, which a RIP-relative `lea` loads. The
                    // relocation's symbol+addend is the target plus the entry's distance
                    // from the table.
                    let below = Builder.lowerBound(tableBases, pcAt + 1)
                    guard below > 0, pcAt - tableBases[below - 1] < 0x10000 else {
                        throw OvlError("cannot rewrite: a PC-relative code reference at 0x\(String(pcAt, radix: 16)) belongs to no table the code addresses")
                    }
                    let tableAt = tableBases[below - 1]
                    let t = try blockAt(r.target &- (pcAt - tableAt), from: pcAt)
                    dataPatches.append((Int(sec.offset + (r.offset - sec.address)), size, canonical(t), tableAt))
                    continue
                }
                let b = try blockAt(r.target, from: r.offset)
                if size == 8, let u = clusterTableField[r.offset], unit(of: b) == u {
                    dataPatches.append((Int(sec.offset + (r.offset - sec.address)), size, .buffer(b), pc))
                    continue
                }
                dataPatches.append((Int(sec.offset + (r.offset - sec.address)), size, canonical(b), pc))
            }
        }
        // IRELATIVE relocations name their resolver in the addend (glibc's apply_irel).
        for sec in elf.sections where sec.type == ELFFile.SHT_RELA && sec.isAllocated {
            var o = Int(sec.offset)
            while o + 24 <= Int(sec.offset + sec.size) {
                let info = readLE(elf.bytes, o + 8, 8)
                if UInt32(truncatingIfNeeded: info) == ELFFile.R_X86_64_IRELATIVE {
                    let addend = readLE(elf.bytes, o + 16, 8)
                    if inCode(addend) { dataPatches.append((o + 16, 8, canonical(try blockAt(addend, from: addend)), nil)) }
                }
                o += 24
            }
        }
        // GOT slots holding code addresses (filled by the static link, no relocation kept).
        for name in [".got"] {
            guard let sec = elf.section(named: name), sec.hasFileBytes else { continue }
            var o = Int(sec.offset)
            while o + 8 <= Int(sec.offset + sec.size) {
                let v = readLE(elf.bytes, o, 8)
                if inCode(v), p.isInstructionStart(v) { dataPatches.append((o, 8, canonical(v), nil)) }
                o += 8
            }
        }
        guard p.block(startingAt: elf.entry) != nil, unit(of: elf.entry) == 0 else {
            throw OvlError("cannot rewrite: the entry point 0x\(String(elf.entry, radix: 16)) is not resident code")
        }

    }

    /// The new image's program headers: the original's, less the segments that held
    /// nothing but analysed code.
    func keptProgramHeaders() -> [ELFFile.ProgramHeader] {
        let loads = elf.programHeaders.filter { $0.type == ELFFile.PT_LOAD }
        let codeSegments = loads.filter { seg in
            let secs = elf.sections.filter { $0.isAllocated && $0.size > 0 && $0.address >= seg.virtualAddress && $0.address < seg.virtualAddress + seg.memorySize }
            return !secs.isEmpty && secs.allSatisfy { p.analysedSections.contains($0.name) }
        }
        return elf.programHeaders.filter { ph in !codeSegments.contains { $0.offset == ph.offset && $0.virtualAddress == ph.virtualAddress && ph.type == ELFFile.PT_LOAD } }
    }

    /// Return sites in cluster code that the manager sees (calls through a call thunk or
    /// `_dynamic_call_ind`; a direct call's callee returns straight to it): the most
    /// return records the image can need without recursion.
    func returnSites() -> Int { clusterUnits.reduce(0) { $0 + $1.returnSites } }

    /// Where every part of the new image goes, given the manager's sizes.
    func layout(manager m: ManagerLinker.Sizes) throws -> ImageLayout {
        let loads = elf.programHeaders.filter { $0.type == ELFFile.PT_LOAD }
        guard let first = loads.min(by: { $0.virtualAddress < $1.virtualAddress }) else { throw OvlError("no loadable segment") }
        var L = ImageLayout()
        L.base = first.virtualAddress &- first.offset
        let maxEnd = loads.map { $0.virtualAddress + $0.memorySize }.max()!
        let page = ImageLayout.page
        let up = ImageLayout.up
        L.rxOff = up(max(UInt64(elf.bytes.count), maxEnd - L.base), page)
        L.rxVaddr = L.base + L.rxOff
        let kept = keptProgramHeaders()
        L.newPhdrCount = kept.count + 3 + (backend == .memory ? 1 : 0) + 1
        L.managerText = L.rxVaddr + up(UInt64(L.newPhdrCount * 56), 16)
        L.managerTextSize = UInt64(m.text)
        L.jthunkAt = up(L.managerText + L.managerTextSize, 16)
        L.cthunkAt = L.jthunkAt + UInt64(jumpThunks.count * 15)
        L.residentAt = up(L.cthunkAt + UInt64(callThunks.count * 10), 16)
        L.rxEnd = L.residentAt + UInt64(resident.size)
        L.rwOff = up(L.rxOff + (L.rxEnd - L.rxVaddr), page)
        L.rwVaddr = L.base + L.rwOff
        L.entriesAt = up(L.rwVaddr + UInt64(m.data), 16)
        L.clusterTableAt = L.entriesAt + UInt64(thunkBlocks.count * 8)
        L.countersAt = up(L.clusterTableAt + UInt64((clusterCount + 1) * 4), 8)
        L.rwFileEnd = L.countersAt + UInt64(clusterCount * 16)
        L.bssAt = up(L.rwFileEnd, 64)
        // The return stack: one 16-byte record per call from buffer code in flight. Without
        // recursion no more are in flight than there are such call sites; deeper nesting
        // moves the stack to fresh pages at run time.
        L.retStackAt = up(L.bssAt + UInt64(m.bss), 16)
        L.retCapacity = ImageLayout.returnStackCapacity(sites: returnSites())
        L.rwMemEnd = L.retStackAt + UInt64(L.retCapacity * 16)
        L.bufVaddr = up(L.rwMemEnd, page)
        L.buffers = s.config.buffers
        L.bufferSize = UInt64(s.config.bufferSize)
        L.bufStride = up(UInt64(s.config.bufferSize), 16)
        L.buffersEnd = L.bufVaddr + L.bufStride * UInt64(L.buffers)
        L.bufOff = up(L.rwOff + (L.rwFileEnd - L.rwVaddr), page)
        L.storeOff = L.bufOff
        L.storeVaddr = up(L.buffersEnd, page)
        placeBelowImage(&L, loads: loads, kept: kept)
        return L
    }

    /// Moves the new segments below the original image when there is room, so that they
    /// leave every address the program can observe in its data as it was: its heap starts
    /// after the highest segment (brk), which stays the original's, so address-dependent
    /// paths (string functions that check page boundaries, hashes of pointers) take the same
    /// turns as in the trace. The program header table then goes into the unused rest of
    /// the file's first page, which a read-only segment maps at the lowest address of all:
    /// the kernel finds the table through the segment that maps e_phoff, qemu-user at the
    /// lowest segment's address + e_phoff, and both land on it.
    func placeBelowImage(_ L: inout ImageLayout, loads: [ELFFile.ProgramHeader], kept: [ELFFile.ProgramHeader]) {
        let page = ImageLayout.page
        let up = ImageLayout.up
        guard !kept.contains(where: { $0.type == 6 /* PT_PHDR */ }) else { return }
        // The first page of the file: what the original puts there, and what follows it.
        var used = UInt64(64 + elf.programHeaders.count * 56)
        for ph in loads {
            if ph.offset > 0 && ph.offset < page { return }  // another segment shares the page
            if ph.offset == 0 { used = max(used, min(ph.fileSize, page)) }
        }
        for sec in elf.sections where sec.hasFileBytes && sec.size > 0 && sec.offset < page {
            used = max(used, sec.offset + sec.size)
        }
        let table = up(used, 8)
        guard table + UInt64(L.newPhdrCount * 56) <= page else { return }
        let storeBytes = clusterUnits.reduce(0) { $0 + $1.size } * L.buffers
        let end = backend == .memory ? L.storeVaddr + up(UInt64(storeBytes), page) : up(L.buffersEnd, page)
        let span = end - L.rxVaddr
        let lowestOriginal = loads.map(\.virtualAddress).min()! & ~(page - 1)
        let floor: UInt64 = 0x10_0000
        guard lowestOriginal > floor + 3 * page, span <= lowestOriginal - floor - 3 * page else { return }
        let rxTarget = lowestOriginal - page - up(span, page)
        L.shift(down: L.rxVaddr - rxTarget)
        L.phdrTableOffset = table
        L.firstPageVaddr = rxTarget - page
    }

    /// What the image laid out as `L` occupies in memory.
    func account(_ L: ImageLayout) -> MemoryAccount {
        MemoryAccount(
            residentText: resident.size, managerCode: Int(L.managerTextSize),
            thunks: jumpThunks.count * 15 + callThunks.count * 10,
            managerData: Int(L.rwFileEnd - L.rwVaddr),
            managerZero: Int(L.rwMemEnd - L.bssAt),
            buffers: Int(L.bufStride) * L.buffers, exact: true,
            note: demoted.isEmpty ? "measured on the layout ovl rewrite writes"
                : "measured on the layout ovl rewrite writes, which keeps \(demoted.count) cluster\(demoted.count == 1 ? "" : "s") resident (outgrew the buffer)",
            clusterBytes: demoted.isEmpty ? clusterUnits.map(\.size) : nil)
    }

    /// The memory the image would occupy, without writing it.
    mutating func plan() throws -> MemoryAccount {
        try prepare()
        return account(try layout(manager: try ManagerLinker.sizes(buffers: s.config.buffers)))
    }

    mutating func build() throws -> RewriteResult {
        try prepare()
        guard let linker else { throw OvlError("internal: building an image needs the manager's linker") }
        let probe = try linker.link(text: 0x40_0000, data: 0x1000_0000, bss: 0)
        let L = try layout(manager: ManagerLinker.Sizes(text: probe.text.count, data: probe.data.count, bss: probe.bssSize))
        let page = ImageLayout.page
        let up = ImageLayout.up
        let (rxOff, rxVaddr, managerText, managerTextSize) = (L.rxOff, L.rxVaddr, L.managerText, L.managerTextSize)
        let (jthunkAt, cthunkAt, residentAt) = (L.jthunkAt, L.cthunkAt, L.residentAt)
        let rxSize = L.rxEnd - L.rxVaddr
        let (rwOff, rwVaddr, entriesAt, clusterTableAt, countersAt) = (L.rwOff, L.rwVaddr, L.entriesAt, L.clusterTableAt, L.countersAt)
        let (bssAt, rwMemEnd) = (L.bssAt, L.rwMemEnd)
        let (bufVaddr, buffersEnd, bufOff, storeOff, storeVaddr) = (L.bufVaddr, L.buffersEnd, L.bufOff, L.storeOff, L.storeVaddr)
        let keptPhdrs = keptProgramHeaders()
        let clusterUnits = self.clusterUnits, resident = self.resident
        let linked = try linker.link(text: managerText, data: rwVaddr, bss: bssAt)
        guard linked.text.count == probe.text.count, linked.data.count == probe.data.count, linked.bssSize == probe.bssSize else {
            throw OvlError("internal: the overlay manager changed size between links")
        }
        func sym(_ n: String) throws -> UInt64 {
            guard let v = linked.symbols[n] else { throw OvlError("internal: the overlay manager has no symbol \(n)") }
            return v
        }
        // Resolving references outside a unit.
        let prog = p
        let blockChain = s.chains.blockChain, finalCluster = chainCluster
        let unitOf: (UInt64) -> Int = { a in Int(finalCluster[Int(blockChain[prog.block(containing: a)!])]) + 1 }
        let resolveResidentBlock: (UInt64) throws -> UInt64 = { b in
            guard let i = resident.addrItem[b] else { throw OvlError("internal: code at 0x\(String(b, radix: 16)) is not resident") }
            return residentAt + UInt64(resident.offsets[i])
        }
        let jIndex = jumpThunkIndex, cIndex = callThunkIndex, thunkCount = thunkBlocks.count
        let resolve: (CodeRef) throws -> UInt64 = { r in
            switch r {
            case .code(let b): return try resolveResidentBlock(b)
            case .jumpThunk(let b): return jthunkAt + UInt64(jIndex[b]! * 15)
            case .callThunk(let b): return cthunkAt + UInt64(cIndex[b]! * 10)
            case .fixed(let a): return a
            case .manager(let n): return try sym(n.rawValue)
            case .packed(let b):
                let k = unitOf(b)
                if k == 0 {
                    let a = try resolveResidentBlock(b)
                    guard a < 0x8000_0000, a >= UInt64(thunkCount) else { throw OvlError("cannot rewrite: resident code at 0x\(String(a, radix: 16)) is outside the 31-bit range a cluster's thunk can name") }
                    return a
                }
                guard k - 1 < 0x8000, let i = clusterUnits[k - 1].addrItem[b], clusterUnits[k - 1].offsets[i] < 0x1_0000 else {
                    throw OvlError("cannot rewrite: a cluster's thunk cannot name 0x\(String(b, radix: 16)) (at most 32,767 clusters and 64 KB buffers)")
                }
                return 0x8000_0000 | UInt64(k - 1) << 16 | UInt64(clusterUnits[k - 1].offsets[i])
            case .localThunk:
                throw OvlError("internal: a local thunk referred to from outside its cluster")
            case .buffer(let b):
                let k = unitOf(b)
                guard k > 0, let i = clusterUnits[k - 1].addrItem[b] else { throw OvlError("internal: code at 0x\(String(b, radix: 16)) is in no cluster") }
                return bufVaddr + UInt64(clusterUnits[k - 1].offsets[i])
            }
        }

        // Code.
        let residentBytes = try resident.encode(base: residentAt, resolve: resolve)
        var store: [UInt8] = []
        var clusterStart: [UInt32] = []
        var clusterBytes: [Int] = []
        for u in clusterUnits {
            clusterStart.append(UInt32(store.count))
            // One copy linked for each buffer: the manager copies the one for the buffer
            // it chose.
            for j in 0..<L.buffers {
                let bytes = try u.encode(base: bufVaddr + UInt64(j) * L.bufStride, resolve: resolve)
                if j == 0 { clusterBytes.append(bytes.count) }
                guard bytes.count == clusterBytes.last! else { throw OvlError("internal: a cluster's copies differ in size") }
                store += bytes
            }
        }
        clusterStart.append(UInt32(store.count))
        var thunks: [UInt8] = []
        let djmp = try sym("_dynamic_jmp"), dcall = try sym("_dynamic_call")
        for (i, b) in jumpThunks.enumerated() {
            let at = jthunkAt + UInt64(i * 15)
            thunks += [0x48, 0x8D, 0x64, 0x24, 0x80, 0x68] + le(UInt64(thunkID[b]!), 4) + [0xE9]
            thunks += le(UInt64(UInt32(truncatingIfNeeded: Int64(bitPattern: djmp &- (at + 15)))), 4)
        }
        for (i, b) in callThunks.enumerated() {
            let at = cthunkAt + UInt64(i * 10)
            thunks += [0x68] + le(UInt64(thunkID[b]!), 4) + [0xE9]
            thunks += le(UInt64(UInt32(truncatingIfNeeded: Int64(bitPattern: dcall &- (at + 10)))), 4)
        }
        var entries: [UInt8] = []
        guard clusterCount < Int(Int16.max) else { throw OvlError("cannot rewrite: \(clusterCount) clusters, more than the entry table holds (32,766)") }
        for b in thunkBlocks {
            let block = p.block(containing: b)!
            let k = chainCluster[Int(s.chains.blockChain[block])]
            let stays: UInt64 = reach!.staysIn(Int(k) + 1, callingBlock: block) ? 1 << 16 : 0
            if k < 0 {
                entries += le(0xFFFF | stays, 4) + le(try resolveResidentBlock(b), 4)
            } else {
                let u = clusterUnits[Int(k)]
                entries += le(UInt64(UInt16(k)) | stays, 4) + le(UInt64(u.offsets[u.addrItem[b]!]), 4)
            }
        }

        // Manager data: ovl_image fields, in the C struct's order.
        var data = linked.data
        let imageAt = Int(try sym("ovl_image") - linked.dataAddress)
        let fields: [UInt64] = [
            0x45474d494c564f, bufVaddr, UInt64(s.config.bufferSize), UInt64(L.buffers), L.bufStride,
            entriesAt, UInt64(thunkBlocks.count),
            jthunkAt, jthunkAt + UInt64(jumpThunks.count * 15), cthunkAt, cthunkAt + UInt64(callThunks.count * 10),
            UInt64(clusterCount), clusterTableAt, backend == .memory ? 0 : 1, backend == .memory ? storeVaddr : 0, storeOff,
            countersAt, L.retStackAt, UInt64(L.retCapacity),
            try sym("_ovl_return"), bufVaddr, up(buffersEnd, page) - bufVaddr,
        ]
        for (i, v) in fields.enumerated() { data.replaceSubrange((imageAt + i * 8)..<(imageAt + i * 8 + 8), with: le(v, 8)) }
        var rw = data
        rw += [UInt8](repeating: 0, count: Int(entriesAt - rwVaddr) - rw.count) + entries
        rw += [UInt8](repeating: 0, count: Int(clusterTableAt - rwVaddr) - rw.count)
        for v in clusterStart { rw += le(UInt64(v), 4) }
        rw += [UInt8](repeating: 0, count: Int(countersAt - rwVaddr) - rw.count)
        rw += [UInt8](repeating: 0, count: clusterCount * 16)

        var rx = [UInt8](repeating: 0, count: Int(rxSize))
        func put(_ bytes: [UInt8], at addr: UInt64) { rx.replaceSubrange(Int(addr - rxVaddr)..<(Int(addr - rxVaddr) + bytes.count), with: bytes) }
        put(linked.text, at: managerText)
        put(thunks, at: jthunkAt)
        put(residentBytes, at: residentAt)

        // Patch the original bytes: code pointers in data, entry point.
        var image = elf.bytes
        for d in dataPatches {
            var v = try resolve(d.ref)
            if let pc = d.pcRelativeFrom { v = UInt64(UInt32(truncatingIfNeeded: Int64(bitPattern: v &- pc))) }
            else if d.size == 4 && v > 0x7fff_ffff { throw OvlError("a 32-bit code pointer does not fit after rewriting") }
            image.replaceSubrange(d.fileOffset..<(d.fileOffset + d.size), with: le(v, d.size))
        }
        let newEntry = try resolve(.code(elf.entry))

        var w = ImageWriter(original: image, elf: elf)
        w.newEntry = newEntry
        w.droppedCodeSections = Set(p.analysedSections)
        w.keptPhdrs = keptPhdrs
        if let t = L.phdrTableOffset { w.firstPage = (t, L.firstPageVaddr) }
        w.rx = (rxOff, rxVaddr, rx)
        w.rw = (rwOff, rwVaddr, rw, rwMemEnd - rwVaddr)
        w.buffer = (bufOff, bufVaddr, buffersEnd - bufVaddr)
        w.store = (storeOff, backend == .memory ? storeVaddr : 0, store)
        w.sections = [
            (".ovl.manager", managerText, managerTextSize, 0x6, rxOff + (managerText - rxVaddr), 1),
            (".ovl.thunks", jthunkAt, UInt64(thunks.count), 0x6, rxOff + (jthunkAt - rxVaddr), 1),
            (".ovl.text", residentAt, UInt64(residentBytes.count), 0x6, rxOff + (residentAt - rxVaddr), 1),
            (".ovl.data", rwVaddr, UInt64(rw.count), 0x3, rwOff, 1),
            (".ovl.bss", bssAt, rwMemEnd - bssAt, 0x3, rwOff + UInt64(rw.count), 8),
            (".ovl.buffer", bufVaddr, buffersEnd - bufVaddr, 0x6, bufOff, 8),
            (".ovl.store", backend == .memory ? storeVaddr : 0, UInt64(store.count), backend == .memory ? 0x2 : 0, storeOff, 1),
        ]
        var symbols: [(String, UInt64, UInt64, Int, UInt8)] = []  // name, value, size, section (new index), type
        for n in ["_dynamic_jmp", "_dynamic_call", "_dynamic_call_ind", "_ovl_return", "_ovl_exit_hook"] {
            symbols.append((n, try sym(n), 0, 0, ELFFile.STT_FUNC))
        }
        symbols.append(("ovl_image", try sym("ovl_image"), UInt64(fields.count * 8), 3, ELFFile.STT_OBJECT))
        symbols.append(("ovl_cluster_address_table", clusterTableAt, UInt64((clusterCount + 1) * 4), 3, ELFFile.STT_OBJECT))
        symbols.append(("ovl_entries", entriesAt, UInt64(entries.count), 3, ELFFile.STT_OBJECT))
        symbols.append(("ovl_return_stack", L.retStackAt, UInt64(L.retCapacity * 16), 4, ELFFile.STT_OBJECT))
        symbols.append(("ovl_code_buffer", bufVaddr, buffersEnd - bufVaddr, 5, ELFFile.STT_OBJECT))
        for k in 0..<clusterCount {
            let v = (backend == .memory ? storeVaddr : 0) + UInt64(clusterStart[k])
            symbols.append(("ovl_cluster_\(k)", v, UInt64(clusterBytes[k]), 6, ELFFile.STT_OBJECT))
        }
        for f in p.functions where !f.isGap && f.blockCount > 0 {
            guard unit(ofBlock: f.firstBlock) == 0, let i = resident.addrItem[f.address] else { continue }
            var j = i + 1
            while j < resident.items.count, resident.items[j].original == 0 || (resident.items[j].original >= f.address && resident.items[j].original < f.end) { j += 1 }
            let endOff = j < resident.items.count ? resident.offsets[j] : resident.size
            symbols.append((f.name, residentAt + UInt64(resident.offsets[i]), UInt64(max(0, endOff - resident.offsets[i])), 2, ELFFile.STT_FUNC))
        }
        w.symbols = symbols
        let out = try w.write()

        let memory = account(L)
        guard memory.thunks == thunks.count, memory.residentText == residentBytes.count, memory.managerData == rw.count else {
            throw OvlError("internal: the image's parts differ from its planned sizes")
        }
        return RewriteResult(
            image: out, chainCluster: chainCluster, clusterCount: clusterCount, demotedClusters: demoted,
            clusterBytes: clusterBytes, memory: memory, storeBytes: store.count,
            originalTextBytes: p.textSectionBytes, directCallsFromBuffer: directCalls)
    }
}

func readLE(_ b: [UInt8], _ o: Int, _ n: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<n { v |= UInt64(b[o + i]) << (8 * UInt64(i)) }
    return v
}

/// Where the parts of a rewritten image go (addresses and file offsets).
struct ImageLayout {
    /// Below the image (`placeBelowImage`): the program header table's offset in the file's
    /// first page and where a read-only segment maps that page; nil: the table leads rx.
    var phdrTableOffset: UInt64? = nil
    var firstPageVaddr: UInt64 = 0

    /// Moves every new segment `d` bytes down (page-aligned), file offsets unchanged.
    mutating func shift(down d: UInt64) {
        rxVaddr -= d; rxEnd -= d; managerText -= d; jthunkAt -= d; cthunkAt -= d; residentAt -= d
        rwVaddr -= d; entriesAt -= d; clusterTableAt -= d; countersAt -= d; rwFileEnd -= d
        bssAt -= d; retStackAt -= d; rwMemEnd -= d; bufVaddr -= d; buffersEnd -= d; storeVaddr -= d
    }

    static let page: UInt64 = 0x1000
    static func up(_ v: UInt64, _ a: UInt64) -> UInt64 { (v + a - 1) / a * a }

    var base: UInt64 = 0
    var rxOff: UInt64 = 0, rxVaddr: UInt64 = 0, rxEnd: UInt64 = 0
    var newPhdrCount = 0
    var managerText: UInt64 = 0, managerTextSize: UInt64 = 0
    var jthunkAt: UInt64 = 0, cthunkAt: UInt64 = 0, residentAt: UInt64 = 0
    var rwOff: UInt64 = 0, rwVaddr: UInt64 = 0
    var entriesAt: UInt64 = 0, clusterTableAt: UInt64 = 0, countersAt: UInt64 = 0, rwFileEnd: UInt64 = 0
    var bssAt: UInt64 = 0, retStackAt: UInt64 = 0, rwMemEnd: UInt64 = 0
    var retCapacity = 0
    var bufVaddr: UInt64 = 0, bufferSize: UInt64 = 0, bufStride: UInt64 = 0, buffers = 1
    var buffersEnd: UInt64 = 0

    /// Return records the image starts with: one per call site in cluster code that goes
    /// through the manager, at most 64 (1 KB: the deepest sample, deepchain, nests 58
    /// deep); deeper nesting moves the stack to fresh pages at run time
    /// (`returnStackPeak` in OVL_STATS says how deep it went).
    static func returnStackCapacity(sites: Int) -> Int { min(64, max(1, sites)) }
    var bufOff: UInt64 = 0, storeOff: UInt64 = 0, storeVaddr: UInt64 = 0
}

/// What the rewriter's builder needs of a session before any clustering: split points
/// (branch targets inside an instruction), the relocations of the code by field address,
/// the code ranges and the hot loop heads. Computed once per session, since the explorer
/// measures every analysis's memory on the rewriter's layout.
struct RewriteBasis: Sendable {
    let codeRanges: [(UInt64, UInt64)]
    let splitPoints: Set<UInt64>
    let splitSorted: [UInt64]
    let codeRelocs: [UInt64: ELFFile.Relocation]
    let relocOffsets: [UInt64]
    /// For each block, the first of `relocOffsets` at or after its start (the blocks
    /// come in address order): where the layout of a block starts looking.
    let blockFirstReloc: [UInt32]
    let hotLoopHeads: Set<Int32>
    let callGraph: CallReach.Graph

    /// The session's basis: the one it started building as it opened, or, for an image
    /// it found it cannot rewrite, one built now (the rewriter then refuses it).
    static func of(_ session: Session) -> RewriteBasis {
        session.rewriteBasisTask?.value ?? RewriteBasis(session)
    }

    static func build(_ session: Session) -> RewriteBasis { RewriteBasis(session) }

    private init(_ session: Session) {
        let prog = session.program, elf = prog.elf
        codeRanges = prog.analysedSections.compactMap { n in elf.section(named: n).map { ($0.address, $0.address + $0.size) } }
        var split = Set<UInt64>()
        let kinds = prog.blockKind, targets = prog.blockTarget, targetAddresses = prog.blockTargetAddress
        // A target that starts a block (most) starts an instruction: no search for it.
        for b in 0..<prog.blockCount where kinds[b].isDirect && targets[b] < 0 {
            let t = targetAddresses[b]
            if prog.block(containing: t) != nil && !prog.isInstructionStart(t) { split.insert(t) }
        }
        splitPoints = split
        splitSorted = split.sorted()
        var relocs: [UInt64: ELFFile.Relocation] = [:]
        for rs in elf.relocationSections where rs.appliesTo < elf.sections.count && elf.sections[rs.appliesTo].isExecutable {
            for r in rs.relocations { relocs[r.offset] = r }
        }
        codeRelocs = relocs
        relocOffsets = relocs.keys.sorted()
        var firstReloc = [UInt32](repeating: 0, count: prog.blockCount)
        var r = 0
        for b in 0..<prog.blockCount {
            let start = prog.blockStart[b]
            while r < relocOffsets.count && relocOffsets[r] < start { r += 1 }
            firstReloc[b] = UInt32(r)
        }
        blockFirstReloc = firstReloc
        var heads = Set<Int32>()
        for b in 0..<prog.blockCount where prog.blockKind[b] == .jump || prog.blockKind[b] == .conditionalJump {
            let t = Int(prog.blockTarget[b])
            guard t >= 0, t <= b, prog.blockFunction[t] == prog.blockFunction[b], prog.blockStart[t] % 16 == 0,
                  session.profiles.contains(where: { $0.blockCounts[t] > 0 }) else { continue }
            heads.insert(Int32(t))
        }
        hotLoopHeads = heads
        callGraph = CallReach.Graph(program: prog)
    }
}
