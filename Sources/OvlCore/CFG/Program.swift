import Foundation

/// A function (or a stretch of code between symbols) of the image.
public struct Function: Sendable {
    public let name: String
    /// Other symbol names at the same address.
    public let aliases: [String]
    public let address: UInt64
    /// Bytes the function occupies in its section (its symbol size, or up to the next
    /// symbol when the symbol has none). Padding after it is not included.
    public let size: Int
    public let section: String
    /// Blocks `firstBlock ..< firstBlock + blockCount`, in address order.
    public internal(set) var firstBlock: Int32
    public internal(set) var blockCount: Int32
    /// Why the function must stay resident whatever the configuration says, if it must:
    /// it could not be decoded completely, for instance.
    public internal(set) var requiredResidentReason: String?
    /// True for code found between symbols rather than under a symbol of its own.
    public let isGap: Bool

    public var blocks: Range<Int> { Int(firstBlock)..<Int(firstBlock + blockCount) }
    public var end: UInt64 { address + UInt64(size) }
}

/// The whole program as the paper sees it: functions, basic blocks, their transfers and
/// the static edges between them. Blocks are stored as parallel arrays (one entry per
/// block, in address order) because a kernel has hundreds of thousands of them.
///
/// The arrays are written only while the program is built (`CFGBuilder`) and read
/// everywhere after, in the engine's innermost loops: they are exempt from the dynamic
/// exclusivity checks every read of a class's stored property otherwise makes.
public final class Program: @unchecked Sendable {
    public let elf: ELFFile
    public let path: String
    @exclusivity(unchecked) public internal(set) var functions: [Function] = []

    @exclusivity(unchecked) public internal(set) var blockStart: [UInt64] = []
    @exclusivity(unchecked) public internal(set) var blockSize: [UInt32] = []
    @exclusivity(unchecked) public internal(set) var blockInstructionCount: [UInt32] = []
    /// The index in `instructionStarts` of each block's first instruction: the blocks
    /// partition the decoded instructions in address order.
    @exclusivity(unchecked) public internal(set) var blockFirstInstruction: [UInt32] = []
    @exclusivity(unchecked) public internal(set) var blockFunction: [Int32] = []
    /// The transfer that ends the block.
    @exclusivity(unchecked) public internal(set) var blockKind: [TransferKind] = []
    /// Length in bytes of the block's last instruction (the transfer).
    @exclusivity(unchecked) public internal(set) var blockTransferLength: [UInt8] = []
    /// For a direct transfer: the block at its target, or -1 when the target is outside
    /// the decoded code.
    @exclusivity(unchecked) public internal(set) var blockTarget: [Int32] = []
    @exclusivity(unchecked) public internal(set) var blockTargetAddress: [UInt64] = []
    /// Whether control continues from the block into the next block in memory
    /// (fall-through, or the return site of a call).
    @exclusivity(unchecked) public internal(set) var blockContinues: [Bool] = []
    /// Targets of indirect jumps resolved through jump tables, keyed by block.
    public internal(set) var jumpTableTargets: [Int32: [Int32]] = [:]
    /// The table each of those jumps reads (8-byte absolute entries) and how many of its
    /// entries are targets.
    public internal(set) var jumpTables: [Int32: (address: UInt64, entries: Int)] = [:]
    /// Indirect jumps that could not be resolved (tail calls through pointers, mostly).
    public internal(set) var unresolvedIndirectJumps = 0

    /// Start address of every decoded instruction, sorted.
    @exclusivity(unchecked) public internal(set) var instructionStarts: [UInt64] = []
    /// What decoding said of each of those instructions (same order), kept so that the
    /// rewriter's layout, the explorer's disassembly and the kernel rewriter read it
    /// instead of decoding the image again (`instruction(at:)`): the length, the kind of
    /// transfer, a direct transfer's target, the fields' sizes and offsets and the flags
    /// packed in one word (`shape(of:)`), and the displacement.
    @exclusivity(unchecked) public internal(set) var instructionLength: [UInt8] = []
    @exclusivity(unchecked) public internal(set) var instructionFlow: [TransferKind] = []
    @exclusivity(unchecked) public internal(set) var instructionTarget: [UInt64] = []
    @exclusivity(unchecked) public internal(set) var instructionShape: [UInt32] = []
    @exclusivity(unchecked) public internal(set) var instructionDisplacement: [Int64] = []
    /// Addresses of rep-prefixed string instructions (QEMU logs every iteration).
    public internal(set) var repStringAddresses: Set<UInt64> = []
    /// Functions whose address is taken (function pointers in data or code).
    public internal(set) var addressTakenFunctions: Set<Int32> = []
    private var addressTableBuilt = false
    private var addressTableValue: AddressTable?
    private let addressTableLock = NSLock()

    /// Every address of the executable range classified for the profile reader, built on
    /// first use (nil when the range is larger than the table allows).
    var addressTable: AddressTable? {
        addressTableLock.lock()
        defer { addressTableLock.unlock() }
        if !addressTableBuilt {
            addressTableValue = AddressTable(program: self)
            addressTableBuilt = true
        }
        return addressTableValue
    }

    /// Core sets resolved against this program (`CoreSet.resolve`).
    let coreSets = Memo<CoreSet.Key, CoreSet>(capacity: 64)
    /// What every core set of this program shares (`CoreSet.basis`), and each preset's.
    let coreBasis = Memo<Int, CoreSet.Basis>(capacity: 1)
    let presetCores = Memo<CorePreset, CoreSet>(capacity: 8)
    /// The functions each core glob names, by "name:" or "section:" and the glob
    /// (`CoreSet.nameMatches`, `sectionMatches`).
    let patternMatches = Memo<String, [Int32]>(capacity: 1024)

    /// Frees the address table once the profiles are read (a kernel's is tens of MB).
    func releaseAddressTable() {
        addressTableLock.lock()
        addressTableValue = nil
        addressTableBuilt = false
        addressTableLock.unlock()
    }

    /// Code bytes: functions and the instructions between them, without padding.
    public internal(set) var codeBytes = 0
    /// Sizes of the analysed executable sections.
    public internal(set) var textSectionBytes = 0
    public internal(set) var paddingBytes = 0
    public internal(set) var analysedSections: [String] = []
    public internal(set) var excludedSections: [String] = []

    init(elf: ELFFile) {
        self.elf = elf
        self.path = elf.path
    }

    public var blockCount: Int { blockStart.count }

    /// The block whose bytes contain `address`, if any.
    ///
    /// The arrays are read once into locals: every read of a class's stored array in the
    /// loop would check exclusive access, which cost more than the search.
    public func block(containing address: UInt64) -> Int? {
        let starts = blockStart
        var lo = 0, hi = starts.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if starts[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        let i = lo - 1
        guard i >= 0, address < starts[i] + UInt64(blockSize[i]) else { return nil }
        return i
    }

    /// The block that starts exactly at `address`.
    public func block(startingAt address: UInt64) -> Int? {
        guard let b = block(containing: address), blockStart[b] == address else { return nil }
        return b
    }

    public func isInstructionStart(_ address: UInt64) -> Bool {
        let starts = instructionStarts
        var lo = 0, hi = starts.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if starts[mid] < address { lo = mid + 1 } else { hi = mid }
        }
        return lo < starts.count && starts[lo] == address
    }

    /// The function containing `address`.
    public func function(containing address: UInt64) -> Int? {
        block(containing: address).map { Int(blockFunction[$0]) }
    }

    public func functionIndex(named name: String) -> Int? {
        functionIndices(named: name).first
    }

    /// Every function named `name` (by its symbol or an alias), in order. The explorer
    /// asks on every edit (whether the configuration covers the function under the
    /// cursor): a kernel has ten thousand names to compare, so they are indexed once.
    public func functionIndices(named name: String) -> [Int] {
        if let index = nameIndex.value(for: 0) { return index[name] ?? [] }
        var index: [String: [Int]] = [:]
        index.reserveCapacity(functions.count)
        for (i, f) in functions.enumerated() {
            for n in [f.name] + f.aliases where index[n]?.last != i { index[n, default: []].append(i) }
        }
        nameIndex.store(index, for: 0)
        return index[name] ?? []
    }
    private let nameIndex = Memo<Int, [String: [Int]]>(capacity: 1)

    /// Raw bytes of a block.
    public func bytes(ofBlock b: Int) -> ArraySlice<UInt8> {
        let addr = blockStart[b]
        guard let s = elf.section(containing: addr) else { return [] }
        let off = Int(s.offset + (addr - s.address))
        return elf.bytes[off..<(off + Int(blockSize[b]))]
    }

    /// The block's instructions, as the decoding pass found them (`instruction(at:)`).
    public func instructions(ofBlock b: Int) -> [Instruction] {
        let first = firstInstruction(ofBlock: b)
        return (first..<(first + Int(blockInstructionCount[b]))).map { instruction(at: $0) }
    }

    /// The index in `instructionStarts` of block `b`'s first instruction.
    @inline(__always)
    public func firstInstruction(ofBlock b: Int) -> Int { Int(blockFirstInstruction[b]) }

    /// The decoded instruction `i` (an index into `instructionStarts`), every field as
    /// the decoder gave it, from the arrays the decoding pass kept.
    @inline(__always)
    public func instruction(at i: Int) -> Instruction {
        let shape = instructionShape[i]
        return Instruction(
            address: instructionStarts[i], length: Int(instructionLength[i]), flow: instructionFlow[i],
            isPadding: shape & Program.paddingBit != 0, isRepString: shape & Program.repStringBit != 0,
            target: instructionTarget[i],
            immOffset: Int(shape >> 4 & 0xF), immSize: Int(shape & 0xF),
            dispOffset: Int(shape >> 12 & 0xF), dispSize: Int(shape >> 8 & 0xF), disp: instructionDisplacement[i],
            memIsRIPRelative: shape & Program.ripBit != 0, memHasIndex: shape & Program.indexBit != 0,
            hasMemoryOperand: shape & Program.memoryBit != 0)
    }

    static let paddingBit: UInt32 = 1 << 16
    static let repStringBit: UInt32 = 1 << 17
    static let ripBit: UInt32 = 1 << 18
    static let indexBit: UInt32 = 1 << 19
    static let memoryBit: UInt32 = 1 << 20

    /// An instruction's field sizes and offsets (four bits each: immediate size and
    /// offset, displacement size and offset; an instruction has at most 15 bytes, a
    /// field at most 8) and its flags, in one word.
    static func shape(of ins: Instruction) -> UInt32 {
        var v = UInt32(ins.immSize & 0xF) | UInt32(ins.immOffset & 0xF) << 4
        v |= UInt32(ins.dispSize & 0xF) << 8 | UInt32(ins.dispOffset & 0xF) << 12
        if ins.isPadding { v |= paddingBit }
        if ins.isRepString { v |= repStringBit }
        if ins.memIsRIPRelative { v |= ripBit }
        if ins.memHasIndex { v |= indexBit }
        if ins.hasMemoryOperand { v |= memoryBit }
        return v
    }
}

/// A small thread-safe memo: the last `capacity` answers by key, all forgotten when full.
final class Memo<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    private var values: [Key: Value] = [:]
    private let lock = NSLock()
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func value(for key: Key) -> Value? {
        lock.lock()
        defer { lock.unlock() }
        return values[key]
    }

    func removeAll() {
        lock.lock()
        values.removeAll()
        lock.unlock()
    }

    func store(_ value: Value, for key: Key) {
        lock.lock()
        defer { lock.unlock() }
        if values.count >= capacity { values.removeAll(keepingCapacity: true) }
        values[key] = value
    }
}

/// A value computed on another core from the moment it is created; `value` waits for it.
final class Eventually<Value: Sendable>: @unchecked Sendable {
    private let group = DispatchGroup()
    private var result: Value?

    init(_ work: @escaping @Sendable () -> Value) {
        DispatchQueue.global().async(group: group) { [self] in result = work() }
    }

    var value: Value {
        group.wait()
        return result!
    }
}
