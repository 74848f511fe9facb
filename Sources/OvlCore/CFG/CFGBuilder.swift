import Foundation

/// Options for reading an image into a `Program`.
public struct ProgramOptions: Sendable {
    /// Executable sections left out of the analysis (not decoded, not counted), such as
    /// Linux's `.init.text`, which is freed after boot. Glob patterns.
    public var excludedSections: [String] = []

    public init(excludedSections: [String] = []) { self.excludedSections = excludedSections }
}

extension Program {
    /// Reads an ELF image, decodes every function of every executable section and builds
    /// basic blocks and their static edges.
    public static func load(path: String, options: ProgramOptions = ProgramOptions()) throws -> Program {
        try build(elf: readImage(path: path), options: options)
    }

    /// Reads an image's ELF file, refusing what ovl cannot analyse before any decoding.
    public static func readImage(path: String) throws -> ELFFile {
        let elf = try ELFFile(path: path)
        if elf.isDynamicallyLinked {
            throw OvlError.file(path, "is dynamically linked (it names an interpreter, \(elf.interpreter ?? "ld.so")): its code runs beside shared libraries that are not in the image, so it is not an image ovl supports; link it with -static (ovl reads static x86-64 programs and Linux kernels)")
        }
        return elf
    }

    public static func build(elf: ELFFile, options: ProgramOptions = ProgramOptions()) throws -> Program {
        var builder = CFGBuilder(elf: elf, options: options)
        return try builder.build()
    }
}

/// Decodes the image and forms blocks. One pass decodes every region into flat
/// instruction arrays; leaders (branch targets, instructions after transfers, code
/// pointers) are collected; a second pass cuts the instruction stream into blocks.
struct CFGBuilder {
    let elf: ELFFile
    let options: ProgramOptions
    let program: Program

    /// The decoded instructions for the whole image, in address order, and the regions
    /// (`DecodedCode`).
    var code = DecodedCode()
    /// Addresses where a block must start, marked once every instruction is decoded.
    var leaders = LeaderMarks()

    struct Region {
        var name: String
        var aliases: [String]
        var start: UInt64
        var end: UInt64
        var section: ELFFile.Section
        var isGap: Bool
        var error: String?
    }

    init(elf: ELFFile, options: ProgramOptions) {
        self.elf = elf
        self.options = options
        self.program = Program(elf: elf)
    }

    mutating func build() throws -> Program {
        let exec = elf.sections.filter {
            $0.isExecutable && $0.isAllocated && $0.hasFileBytes && $0.size > 0 && $0.address &+ $0.size > $0.address
        }
        guard !exec.isEmpty else { throw OvlError.file(elf.path, "has no executable sections") }
        guard elf.symbols.contains(where: { $0.isFunction }) else {
            throw OvlError.file(elf.path, "has no function symbols (stripped?); ovl needs the symbol table")
        }
        var analysed: [ELFFile.Section] = []
        for s in exec {
            if options.excludedSections.contains(where: { Glob.matches($0, s.name) }) {
                program.excludedSections.append(s.name)
            } else {
                analysed.append(s)
            }
        }
        analysed.sort { $0.address < $1.address }
        program.analysedSections = analysed.map(\.name)
        program.textSectionBytes = analysed.reduce(0) { $0 + Int($1.size) }

        decode(analysed)
        collectLeaders()
        formBlocks()
        return program
    }

    // MARK: Regions and decoding

    /// One step of decoding a section, found from its symbols alone: code between
    /// symbols, a label without a size, or a function.
    enum DecodeStep {
        case gap(start: UInt64, end: UInt64, after: String)
        case label(start: UInt64, end: UInt64, names: [String])
        case function(start: UInt64, end: UInt64, names: [String])

        var bytes: UInt64 {
            switch self {
            case .gap(let a, let b, _), .label(let a, let b, _), .function(let a, let b, _): return b - a
            }
        }
    }

    /// The section's steps in address order: every function symbol (and non-local label)
    /// with its extent, and the gaps between them.
    func plan(_ s: ELFFile.Section) -> [DecodeStep] {
        // Function symbols (and non-local labels) inside the section, by address.
        var byAddress: [UInt64: (names: [String], size: UInt64, isFunc: Bool)] = [:]
        for sym in elf.symbols where Int(sym.sectionIndex) == s.index && s.contains(sym.value) {
            guard sym.isFunction || sym.type == ELFFile.STT_GNU_IFUNC || (sym.type == 0 && !sym.name.isEmpty && !sym.name.hasPrefix(".L")) else { continue }
            guard !sym.name.isEmpty else { continue }
            var e = byAddress[sym.value] ?? ([], 0, false)
            let isFunc = sym.type != 0
            if isFunc && !e.isFunc { e.names.insert(sym.name, at: 0) } else { e.names.append(sym.name) }
            e.size = max(e.size, sym.size)
            e.isFunc = e.isFunc || isFunc
            byAddress[sym.value] = e
        }
        let starts = byAddress.keys.sorted()
        let sectionEnd = s.address + s.size
        var steps: [DecodeStep] = []
        var cursor = s.address
        var lastName = s.name
        for (i, start) in starts.enumerated() {
            if start > cursor { steps.append(.gap(start: cursor, end: start, after: lastName)) }
            guard start >= cursor else { continue }  // inside the previous function
            let e = byAddress[start]!
            let next = i + 1 < starts.count ? starts[i + 1] : sectionEnd
            var end = e.size > 0 && e.size < sectionEnd - start ? start + e.size : (e.size > 0 ? sectionEnd : next)
            // A symbol whose size runs into the next symbol: stop at the next one unless
            // the next is a plain label inside it.
            if end > next, let n = byAddress[next], n.isFunc { end = next }
            // A label without a size (a linker-script marker such as the kernel's
            // __entry_text_end) says nothing about its extent: padding around the code
            // that follows it is padding, as in a gap, not code of the label's.
            steps.append(e.size == 0 ? .label(start: start, end: end, names: e.names) : .function(start: start, end: end, names: e.names))
            cursor = end
            lastName = e.names[0]
        }
        if cursor < sectionEnd { steps.append(.gap(start: cursor, end: sectionEnd, after: lastName)) }
        return steps
    }

    /// Decodes every analysed section. A large image is decoded in two stretches at once,
    /// split after a function near the middle of its bytes, the second stretch appended
    /// to the first (`DecodedCode.append`): the same arrays as one pass in address order.
    mutating func decode(_ sections: [ELFFile.Section]) {
        var steps: [(section: ELFFile.Section, step: DecodeStep)] = []
        for s in sections { for step in plan(s) { steps.append((s, step)) } }
        let total = steps.reduce(UInt64(0)) { $0 + $1.step.bytes }
        var split = steps.count
        if Cores.active > 1 && total >= decodeSplit.minimumBytes {
            var bytes: UInt64 = 0
            let at = UInt64(Double(total) * decodeSplit.fraction)
            for (i, st) in steps.enumerated() {
                bytes += st.step.bytes
                guard case .function(let start, _, _) = st.step, i + 1 < steps.count else { continue }
                if decodeSplit.afterFunction.map({ $0 == start }) ?? (bytes >= at) { split = i + 1; break }
            }
        }
        let elf = self.elf
        var code = DecodedCode()
        if split == steps.count {
            code.run(steps[...], elf: elf)
        } else {
            // A gap that opens the second stretch is named after the function that ends
            // the first, as one pass names it.
            guard case .function(let before, _, _) = steps[split - 1].step else { preconditionFailure("split after a function") }
            final class Second: @unchecked Sendable { var code = DecodedCode() }
            let second = Second()
            second.code.regionBefore = before
            let rest = Array(steps[split...])
            let restBytes = rest.reduce(UInt64(0)) { $0 + $1.step.bytes }
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) {
                second.code.reserve(Int(restBytes / 3))
                second.code.run(rest[...], elf: elf)
            }
            // Room for both stretches, so that appending the second copies only it.
            code.reserve(Int(total / 3))
            code.run(steps[..<split], elf: elf)
            group.wait()
            code.append(second.code)
        }
        program.paddingBytes += code.paddingBytes
        program.repStringAddresses.formUnion(code.repStrings)
        self.code = code
    }

    /// Images with this much code or more are decoded on two cores, split after the
    /// function at this fraction of the bytes (the tests move the split).
    struct DecodeSplit {
        var minimumBytes: UInt64 = 128 << 10
        var fraction = 0.5
        /// Split after the function that starts here instead.
        var afterFunction: UInt64? = nil
    }
    var decodeSplit = DecodeSplit()

    /// `int3` (CC) and `nop` (90): one-byte instructions that are padding (`Instruction.isPadding`).
    @inline(__always)
    static func isOneBytePadding(_ byte: UInt8) -> Bool { byte == 0xCC || byte == 0x90 }

    // Resolved jump-table targets per instruction index.
    var tableTargets: [Int: [UInt64]] = [:]
    var tableAddress: [Int: UInt64] = [:]

    // MARK: Leaders

    private mutating func collectLeaders() {
        leaders = LeaderMarks(low: code.insAddr.first ?? 0, high: code.insAddr.last.map { $0 + 16 } ?? 0)
        for r in code.regions { leaders.insert(r.start) }
        for i in 0..<code.insAddr.count {
            let f = code.insFlow[i]
            if f.isDirect { leaders.insert(code.insTarget[i]) }
            if f.endsBlock { leaders.insert(code.insAddr[i] + UInt64(code.insLen[i])) }
        }
        // Code pointers from relocations: function pointers and jump-table entries.
        let codeRanges = code.regions.map { ($0.start, $0.end) }
        func inCode(_ a: UInt64) -> Int? {
            var lo = 0, hi = codeRanges.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if codeRanges[mid].0 <= a { lo = mid + 1 } else { hi = mid }
            }
            let i = lo - 1
            return i >= 0 && a < codeRanges[i].1 ? i : nil
        }
        var dataPointers: [UInt64: UInt64] = [:]  // field address -> code address it holds
        for rs in elf.relocationSections {
            guard rs.appliesTo < elf.sections.count else { continue }
            let target = elf.sections[rs.appliesTo]
            guard target.isAllocated else { continue }  // debug info and the like
            for rel in rs.relocations {
                switch rel.type {
                case ELFFile.R_X86_64_64, ELFFile.R_X86_64_32, ELFFile.R_X86_64_32S:
                    guard inCode(rel.target) != nil else { continue }
                    if !target.isExecutable { dataPointers[rel.offset] = rel.target }
                    if !target.isExecutable || rel.type != ELFFile.R_X86_64_64 {
                        if isDecodedStart(rel.target) { leaders.insert(rel.target) }
                    }
                    if let r = inCode(rel.target), code.regions[r].start == rel.target {
                        addressTakenRegions.insert(r)
                    }
                default:
                    continue
                }
            }
        }
        // Jump tables: consecutive 8-byte entries of code addresses inside the same function.
        let haveRelocs = elf.hasCodeRelocations
        for (i, table) in code.tableJumps {
            let region = code.regions[Int(code.insRegion[i])]
            var targets: [UInt64] = []
            var entry = table
            while targets.count < 4096 {
                var value: UInt64? = nil
                if haveRelocs {
                    value = dataPointers[entry]
                } else if let s = elf.section(containing: entry), s.hasFileBytes, !s.isExecutable,
                          entry + 8 <= s.address + s.size {
                    let off = Int(s.offset + (entry - s.address))
                    value = elf.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: UInt64.self) }
                }
                guard let v = value, v >= region.start, v < region.end, isDecodedStart(v) else { break }
                targets.append(v)
                leaders.insert(v)
                entry += 8
            }
            if !targets.isEmpty { tableTargets[i] = targets; tableAddress[i] = table }
        }
    }

    var addressTakenRegions = Set<Int>()

    private func isDecodedStart(_ a: UInt64) -> Bool {
        var lo = 0, hi = code.insAddr.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if code.insAddr[mid] < a { lo = mid + 1 } else { hi = mid }
        }
        return lo < code.insAddr.count && code.insAddr[lo] == a
    }

    // MARK: Blocks

    private mutating func formBlocks() {
        let p = program
        p.instructionStarts = code.insAddr
        p.instructionLength = code.insLen
        p.instructionFlow = code.insFlow
        p.instructionTarget = code.insTarget
        p.instructionShape = code.insShape
        p.instructionDisplacement = code.insDisp
        var functions: [Function] = []
        functions.reserveCapacity(code.regions.count)
        for r in code.regions {
            functions.append(Function(
                name: r.name, aliases: r.aliases, address: r.start, size: Int(r.end - r.start),
                section: r.section.name, firstBlock: 0, blockCount: 0,
                requiredResidentReason: r.error.map { "not fully decodable: \($0)" }, isGap: r.isGap))
            p.codeBytes += Int(r.end - r.start)
        }
        for r in addressTakenRegions { p.addressTakenFunctions.insert(Int32(r)) }

        // The block arrays are built here and handed to the program at the end: appending
        // to a class's arrays one element at a time checks exclusive access each time.
        var blockStart: [UInt64] = [], blockSize: [UInt32] = [], blockInstructionCount: [UInt32] = []
        var blockFirstInstruction: [UInt32] = []
        var blockFunction: [Int32] = [], blockKind: [TransferKind] = [], blockTransferLength: [UInt8] = []
        var blockTargetAddress: [UInt64] = []
        var jumpTables: [Int32: (address: UInt64, entries: Int)] = [:]
        var tableJumpBlocks: [(block: Int, targets: [UInt64])] = []
        var i = 0
        let n = code.insAddr.count
        // Room made once (about a block in four instructions), not grown by copying.
        let expected = n / 3 + 16
        blockStart.reserveCapacity(expected); blockSize.reserveCapacity(expected); blockInstructionCount.reserveCapacity(expected)
        blockFirstInstruction.reserveCapacity(expected); blockFunction.reserveCapacity(expected); blockKind.reserveCapacity(expected)
        blockTransferLength.reserveCapacity(expected); blockTargetAddress.reserveCapacity(expected)
        // Where each block ends (one past its last instruction): after a transfer, before a
        // leader or another function. A scan of its own over the raw arrays: in the loop
        // below, every instruction's three reads went through the builder's arrays.
        var ends: [Int] = []
        ends.reserveCapacity(expected)
        let marks = leaders
        code.insFlow.withUnsafeBufferPointer { flow in
            code.insRegion.withUnsafeBufferPointer { regionOf in
                code.insAddr.withUnsafeBufferPointer { address in
                    var j = 0
                    while j < n {
                        let region = regionOf[j]
                        while true {
                            let f = flow[j]
                            j += 1
                            if f.endsBlock || j >= n || regionOf[j] != region || marks.contains(address[j]) { break }
                        }
                        ends.append(j)
                    }
                }
            }
        }
        var currentRegion: Int32 = -1
        for j in ends {
            let start = i
            let region = code.insRegion[i]
            if region != currentRegion {
                // Close the previous function's block range.
                if currentRegion >= 0 {
                    functions[Int(currentRegion)].blockCount = Int32(blockStart.count) - functions[Int(currentRegion)].firstBlock
                }
                functions[Int(region)].firstBlock = Int32(blockStart.count)
                currentRegion = region
            }
            let last = j - 1
            let b = blockStart.count
            blockStart.append(code.insAddr[start])
            blockSize.append(UInt32(code.insAddr[last] + UInt64(code.insLen[last]) - code.insAddr[start]))
            blockInstructionCount.append(UInt32(j - start))
            blockFirstInstruction.append(UInt32(start))
            blockFunction.append(region)
            blockKind.append(code.insFlow[last])
            blockTransferLength.append(code.insLen[last])
            blockTargetAddress.append(code.insFlow[last].isDirect ? code.insTarget[last] : 0)
            if code.insFlow[last] == .indirectJump, let t = tableTargets[last] {
                tableJumpBlocks.append((b, t))
                jumpTables[Int32(b)] = (tableAddress[last]!, t.count)
            }
            i = j
        }
        if currentRegion >= 0 {
            functions[Int(currentRegion)].blockCount = Int32(blockStart.count) - functions[Int(currentRegion)].firstBlock
        }
        // A region whose bytes could not be decoded at all has no blocks; the ones with an
        // error keep the blocks decoded before it and are pinned resident.
        p.functions = functions
        p.blockStart = blockStart
        p.blockSize = blockSize
        p.blockInstructionCount = blockInstructionCount
        p.blockFirstInstruction = blockFirstInstruction
        p.blockFunction = blockFunction
        p.blockKind = blockKind
        p.blockTransferLength = blockTransferLength
        p.blockTargetAddress = blockTargetAddress
        p.jumpTables = jumpTables

        // Direct targets and continuation into the next block (the block starting at an
        // address found in the local array: the program's checks exclusive access).
        func blockStarting(at a: UInt64) -> Int? {
            var lo = 0, hi = blockStart.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if blockStart[mid] < a { lo = mid + 1 } else { hi = mid }
            }
            return lo < blockStart.count && blockStart[lo] == a ? lo : nil
        }
        let nb = blockStart.count
        var blockTarget = [Int32](repeating: -1, count: nb)
        var blockContinues = [Bool](repeating: false, count: nb)
        for b in 0..<nb {
            let k = blockKind[b]
            if k.isDirect, let t = blockStarting(at: blockTargetAddress[b]) { blockTarget[b] = Int32(t) }
            if k.continues && b + 1 < nb {
                let end = blockStart[b] + UInt64(blockSize[b])
                let contiguous = end == blockStart[b + 1]
                let sameFunction = blockFunction[b] == blockFunction[b + 1]
                let fnHasError = functions[Int(blockFunction[b])].requiredResidentReason != nil
                // A call that is a function's last instruction does not return (a call
                // to a noreturn function); other transfers may really run on.
                if contiguous && (sameFunction || (!k.isCall && !fnHasError)) { blockContinues[b] = true }
            }
        }
        var jumpTableTargets: [Int32: [Int32]] = [:]
        for (b, targets) in tableJumpBlocks {
            var seen = Set<Int32>()
            var list: [Int32] = []
            for t in targets { if let tb = p.block(startingAt: t), seen.insert(Int32(tb)).inserted { list.append(Int32(tb)) } }
            jumpTableTargets[Int32(b)] = list
        }
        p.blockTarget = blockTarget
        p.blockContinues = blockContinues
        p.jumpTableTargets = jumpTableTargets
        p.unresolvedIndirectJumps = (0..<nb).filter { blockKind[$0] == .indirectJump && jumpTableTargets[Int32($0)] == nil }.count
    }
}

/// The addresses where a block must start, asked only of decoded instructions: a bit an
/// address of the span they cover (a program's code spans a few megabytes at most; a
/// wider span, a damaged image's, falls back to a set). An address outside the span
/// starts no instruction, so it is not kept.
struct LeaderMarks {
    private let low: UInt64
    private let high: UInt64
    private var bits: [UInt64] = []
    private var wide: Set<UInt64>?
    private static let widestSpan: UInt64 = 1 << 28

    init(low: UInt64 = 0, high: UInt64 = 0) {
        self.low = low
        self.high = max(high, low)
        if self.high - low > LeaderMarks.widestSpan {
            wide = []
        } else {
            bits = [UInt64](repeating: 0, count: Int((self.high - low + 63) / 64))
        }
    }

    @inline(__always)
    mutating func insert(_ a: UInt64) {
        guard a >= low && a < high else { return }
        if wide != nil { wide!.insert(a); return }
        let o = a - low
        bits[Int(o >> 6)] |= 1 << (o & 63)
    }

    @inline(__always)
    func contains(_ a: UInt64) -> Bool {
        guard a >= low && a < high else { return false }
        if let wide { return wide.contains(a) }
        let o = a - low
        return bits[Int(o >> 6)] & (1 << (o & 63)) != 0
    }
}

/// What decoding a stretch of the image's steps gives (`CFGBuilder.decode`): the flat
/// instruction arrays, the regions, and what the program learns on the way.
struct DecodedCode {
    // Flat instruction arrays, in address order.
    var insAddr: [UInt64] = []
    var insLen: [UInt8] = []
    var insFlow: [TransferKind] = []
    var insTarget: [UInt64] = []
    var insRegion: [Int32] = []
    /// The rest of what decoding said of each instruction (`Program.instructionShape`,
    /// `instructionDisplacement`): kept so that nothing decodes the image again.
    var insShape: [UInt32] = []
    var insDisp: [Int64] = []
    var regions: [CFGBuilder.Region] = []
    /// Indirect jumps through `table(,%reg,8)`: instruction index and table address.
    var tableJumps: [(Int, UInt64)] = []
    var paddingBytes = 0
    var repStrings: [UInt64] = []
    /// Where the region before this stretch starts, when it was decoded elsewhere: a gap
    /// that opens the stretch is named by its distance from it.
    var regionBefore: UInt64?

    /// Runs `steps` in order.
    mutating func run(_ steps: ArraySlice<(section: ELFFile.Section, step: CFGBuilder.DecodeStep)>, elf: ELFFile) {
        // About one instruction in 3.5 bytes: room made once, not grown by copying.
        let bytes = steps.reduce(UInt64(0)) { $0 + $1.step.bytes }
        reserve(Int(bytes / 3))
        elf.bytes.withUnsafeBytes { all in
            for (s, step) in steps {
                let base = Int(s.offset)
                let sec = UnsafeRawBufferPointer(rebasing: all[base..<(base + Int(s.size))])
                switch step {
                case .gap(let start, let end, let after):
                    decodeGap(start, end, after: after, in: sec, section: s)
                case .label(let start, let end, let names):
                    decodeGap(start, end, after: names[0], label: names, in: sec, section: s)
                case .function(let start, let end, let names):
                    regions.append(CFGBuilder.Region(name: names[0], aliases: Array(names.dropFirst()), start: start, end: end, section: s, isGap: false))
                    let r = Int32(regions.count - 1)
                    if let err = decodeRange(start, end, region: r, in: sec, section: s) { regions[Int(r)].error = err }
                }
            }
        }
    }

    mutating func reserve(_ n: Int) {
        insAddr.reserveCapacity(n); insLen.reserveCapacity(n); insFlow.reserveCapacity(n); insTarget.reserveCapacity(n)
        insRegion.reserveCapacity(n); insShape.reserveCapacity(n); insDisp.reserveCapacity(n)
    }

    /// Appends the stretch that follows this one.
    mutating func append(_ next: DecodedCode) {
        let instructions = insAddr.count, regionCount = Int32(regions.count)
        reserve(instructions + next.insAddr.count)
        insAddr += next.insAddr; insLen += next.insLen; insFlow += next.insFlow; insTarget += next.insTarget
        insRegion += next.insRegion.map { $0 + regionCount }
        insShape += next.insShape; insDisp += next.insDisp
        regions += next.regions
        tableJumps += next.tableJumps.map { ($0.0 + instructions, $0.1) }
        paddingBytes += next.paddingBytes
        repStrings += next.repStrings
    }

    @inline(__always)
    private mutating func append(_ ins: Instruction, region: Int32) {
        insAddr.append(ins.address)
        insLen.append(UInt8(ins.length))
        insFlow.append(ins.flow)
        insTarget.append(ins.target)
        insRegion.append(region)
        insShape.append(Program.shape(of: ins))
        insDisp.append(ins.disp)
        if ins.isRepString { repStrings.append(ins.address) }
        if ins.flow == .indirectJump, ins.memHasIndex, !ins.memIsRIPRelative, ins.dispSize == 4 {
            tableJumps.append((insAddr.count - 1, UInt64(bitPattern: ins.disp)))
        }
    }

    mutating func decodeRange(_ start: UInt64, _ end: UInt64, region: Int32, in sec: UnsafeRawBufferPointer, section s: ELFFile.Section) -> String? {
        var a = start
        while a < end {
            let off = Int(a - s.address)
            let avail = Int(end - a)
            guard let ins = X86Decoder.decode(UnsafeRawBufferPointer(rebasing: sec[off..<(off + avail)]), at: a) else {
                return "undecodable bytes at 0x" + String(a, radix: 16)
            }
            append(ins, region: region)
            a += UInt64(ins.length)
        }
        return nil
    }

    /// Decodes a gap between regions: leading padding is skipped; code that follows
    /// becomes a region of its own, named after what precedes it.
    mutating func decodeGap(_ start: UInt64, _ end: UInt64, after name: String, label: [String]? = nil, in sec: UnsafeRawBufferPointer, section s: ELFFile.Section) {
        var a = start
        var paddingEnd = start
        while a < end {
            let off = Int(a - s.address)
            // int3 and the one-byte nop, a kernel's fill between functions, are
            // known by their byte (no prefix makes another instruction of them);
            // anything else is asked of the decoder.
            if CFGBuilder.isOneBytePadding(sec[off]) {
                a += 1
                paddingEnd = a
                continue
            }
            guard let ins = X86Decoder.decode(UnsafeRawBufferPointer(rebasing: sec[off..<Int(end - s.address)]), at: a), ins.isPadding else { break }
            a += UInt64(ins.length)
            paddingEnd = a
        }
        paddingBytes += Int(paddingEnd - start)
        guard paddingEnd < end else { return }
        // Trailing padding of the gap is found after decoding, below.
        if let label, paddingEnd == start {
            regions.append(CFGBuilder.Region(name: label[0], aliases: Array(label.dropFirst()), start: start, end: end, section: s, isGap: false))
        } else {
            let base = label != nil ? start : (regions.last?.start ?? regionBefore ?? s.address)
            // Named by its distance from what precedes it; a symbol table out of order
            // (a damaged image) can leave nothing before it: then by its address.
            let gapName = paddingEnd >= base ? "\(name)+0x" + String(paddingEnd - base, radix: 16)
                                             : "code@0x" + String(paddingEnd, radix: 16)
            regions.append(CFGBuilder.Region(name: gapName, aliases: [], start: paddingEnd, end: end, section: s, isGap: true))
        }
        let r = Int32(regions.count - 1)
        let firstIns = insAddr.count
        if let err = decodeRange(paddingEnd, end, region: r, in: sec, section: s) {
            regions[Int(r)].error = err
        } else {
            // Trim trailing padding from the gap region.
            var last = insAddr.count
            while last > firstIns && isPaddingInstruction(at: last - 1, in: sec, section: s) { last -= 1 }
            if last == firstIns {
                removeInstructions(from: firstIns)
                regions.removeLast()
                paddingBytes += Int(end - paddingEnd)
                return
            }
            let newEnd = last < insAddr.count ? insAddr[last] : end
            paddingBytes += Int(end - newEnd)
            removeInstructions(from: last)
            regions[Int(r)].end = newEnd
        }
    }

    private func isPaddingInstruction(at i: Int, in sec: UnsafeRawBufferPointer, section s: ELFFile.Section) -> Bool {
        let off = Int(insAddr[i] - s.address)
        if insLen[i] == 1 { return CFGBuilder.isOneBytePadding(sec[off]) }
        guard let ins = X86Decoder.decode(UnsafeRawBufferPointer(rebasing: sec[off..<(off + Int(insLen[i]))]), at: insAddr[i]) else { return false }
        return ins.isPadding
    }

    private mutating func removeInstructions(from i: Int) {
        guard i < insAddr.count else { return }
        insAddr.removeSubrange(i...)
        insLen.removeSubrange(i...)
        insFlow.removeSubrange(i...)
        insTarget.removeSubrange(i...)
        insRegion.removeSubrange(i...)
        insShape.removeSubrange(i...)
        insDisp.removeSubrange(i...)
    }
}
