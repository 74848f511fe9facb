/// Re-emitting code for a new address: one *unit* is either the resident text or one
/// overlay cluster (linked to run at the code buffer's address: one VMA, many load
/// addresses). A unit is a list of items — copied instructions, re-encoded branches and
/// the few sequences the overlay manager needs — laid out until stable: short branches
/// whose targets moved out of reach become long ones, which moves other code, and so on.

/// What an address-bearing field of an item refers to.
enum CodeRef: Hashable {
    /// An instruction of the program, by original address: in this unit, or resident
    /// code when this unit is a cluster.
    case code(UInt64)
    /// A jump thunk (`lea -128(%rsp),%rsp; push $id; jmp _dynamic_jmp`) for a block in a
    /// cluster: also the canonical address of cold code held in code pointers.
    case jumpThunk(UInt64)
    /// A call thunk (`push $id; jmp _dynamic_call`) for a block.
    case callThunk(UInt64)
    /// Data (or anything that does not move).
    case fixed(UInt64)
    /// Cold code at its address in the code buffer, valid only while its cluster is
    /// loaded: entries of a jump table that only code of that same cluster reads.
    case buffer(UInt64)
    /// An overlay manager entry point.
    case manager(ManagerEntry)
    /// This unit's own thunk for a transfer to a block (`call` true: a call thunk, else a
    /// jump thunk), placed at the end of the unit.
    case localThunk(UInt64, call: Bool)
    /// The 32-bit word a local thunk pushes for a block: its resident address, or its
    /// cluster and offset in it with the top bit set (`OverlayManagerSource`).
    case packed(UInt64)
}

/// The overlay manager's entry points that rewritten code calls or jumps to, by symbol.
/// (A symbol name in `CodeRef` would make every copy of an item count references.)
enum ManagerEntry: String {
    case dynamicCall = "_dynamic_call"
    case dynamicJump = "_dynamic_jmp"
    case dynamicCallIndirect = "_dynamic_call_ind"
    case exitHook = "_ovl_exit_hook"
}

struct CodeItem {
    enum Kind: Equatable {
        /// Original instruction bytes, fields fixed as listed.
        case raw
        /// `jmp`: short (EB) or long (E9).
        case jump
        /// `jcc`: short (7x) or long (0F 8x), condition `cc`.
        case conditional(UInt8)
        /// `call rel32`.
        case call
        /// `loop`/`jrcxz` and friends: rel8 only, never relaxed.
        case shortOnly
        /// `call *x` in buffer code: `push x` (the original bytes with ModRM.reg = 6), then
        /// `call _dynamic_call_ind`.
        case pushIndirect
        /// `call _ovl_exit_hook`, put in front of a function's first instruction.
        case exitHook
        /// A cluster's own thunk for a transfer that leaves it: `push $packed; jmp
        /// _dynamic_call` (call) or `lea -128(%rsp),%rsp; push $packed; jmp _dynamic_jmp`.
        case localThunk(call: Bool)
    }
    /// Original address of the instruction (0 for synthesized items).
    var original: UInt64
    /// Held in the item, as are its fields: an image's layout makes and copies an item an
    /// instruction, and items without references to count are copied as plain memory.
    /// (The fields are declared largest first, so that the small ones pack together.)
    var bytes: InstructionBytes
    var kind: Kind
    var long = false
    /// Starts on a 16-byte boundary (no-ops before it): a hot loop head the compiler had
    /// aligned, which compacting the code would otherwise leave anywhere.
    var aligned = false
    /// RIP-relative displacement: its offset in `bytes` (-1: none); what it refers to is
    /// in the item's extra.
    var ripOffset: Int8 = -1
    var target: CodeRef = .fixed(0)
    /// The item's entry in its unit's `extras` (-1: none): the referent of a RIP-relative
    /// displacement and the absolute fields, which few instructions have. Kept apart, an
    /// item is 48 bytes instead of about 100 (`codeItemsStaySmall`), and the layout writes
    /// one an instruction.
    var extra: Int32 = -1

    init(kind: Kind, original: UInt64, bytes: InstructionBytes) {
        self.kind = kind
        self.original = original
        self.bytes = bytes
    }

    var size: Int {
        switch kind {
        case .raw, .shortOnly: return bytes.count
        case .jump: return long ? 5 : 2
        case .conditional: return long ? 6 : 2
        case .call, .exitHook: return 5
        case .pushIndirect: return bytes.count + 5
        case .localThunk(let call): return call ? 10 : 15
        }
    }
}

/// What a few items refer to besides their branch target (`CodeItem.extra`).
struct ItemExtra {
    var ripTarget: CodeRef = .fixed(0)
    /// Absolute fields (R_X86_64_32/32S/64 to code): offset, size, referent.
    var absolute = AbsoluteFields()
}

/// An instruction's bytes (at most 15; room for 16), held inline.
struct InstructionBytes: RandomAccessCollection, MutableCollection, ExpressibleByArrayLiteral {
    private var low: UInt64 = 0
    private var high: UInt64 = 0
    private var length: UInt8 = 0

    var count: Int { Int(length) }

    static let capacity = 16

    init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        precondition(bytes.count <= InstructionBytes.capacity, "more bytes than an instruction has")
        for (i, b) in bytes.enumerated() { self[i] = b }
        length = UInt8(bytes.count)
    }

    init(arrayLiteral elements: UInt8...) { self.init(elements) }

    /// The `count` bytes at `start` (at most 16), copied whole: the layout makes one of
    /// these for every instruction of the image.
    init(copying start: UnsafeRawPointer, count: Int) {
        precondition(count <= InstructionBytes.capacity, "more bytes than an instruction has")
        withUnsafeMutableBytes(of: &low) { $0.baseAddress!.copyMemory(from: start, byteCount: Swift.min(count, 8)) }
        if count > 8 { withUnsafeMutableBytes(of: &high) { $0.baseAddress!.copyMemory(from: start + 8, byteCount: count - 8) } }
        length = UInt8(count)
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(i: Int) -> UInt8 {
        get { UInt8(truncatingIfNeeded: (i < 8 ? low : high) >> UInt64(8 * (i & 7))) }
        set {
            let shift = UInt64(8 * (i & 7))
            let v = UInt64(newValue) << shift, mask: UInt64 = ~(0xFF << shift)
            if i < 8 { low = low & mask | v } else { high = high & mask | v }
        }
    }

    /// Overwrites `bytes.count` bytes from `offset`.
    mutating func write(_ bytes: [UInt8], at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= count, "a field outside its instruction")
        for (i, b) in bytes.enumerated() { self[offset + i] = b }
    }
}

/// An item's absolute fields: an instruction has at most two (a displacement and an
/// immediate), held inline.
struct AbsoluteFields: Sequence {
    typealias Field = (offset: Int, size: Int, ref: CodeRef)
    private var firstRef: CodeRef = .fixed(0)
    private var secondRef: CodeRef = .fixed(0)
    private var firstOffset: UInt8 = 0, firstSize: UInt8 = 0
    private var secondOffset: UInt8 = 0, secondSize: UInt8 = 0
    private var taken: UInt8 = 0

    var count: Int { Int(taken) }
    var isEmpty: Bool { taken == 0 }

    /// False when the instruction already has two.
    mutating func append(_ f: Field) -> Bool {
        switch taken {
        case 0: firstRef = f.ref; firstOffset = UInt8(f.offset); firstSize = UInt8(f.size)
        case 1: secondRef = f.ref; secondOffset = UInt8(f.offset); secondSize = UInt8(f.size)
        default: return false
        }
        taken += 1
        return true
    }

    var first: Field { (Int(firstOffset), Int(firstSize), firstRef) }
    var second: Field { (Int(secondOffset), Int(secondSize), secondRef) }

    struct Iterator: IteratorProtocol {
        let fields: AbsoluteFields
        var taken = 0
        mutating func next() -> Field? {
            guard taken < fields.count else { return nil }
            taken += 1
            return taken == 1 ? fields.first : fields.second
        }
    }

    func makeIterator() -> Iterator { Iterator(fields: self) }
}

/// Original addresses (never 0) to item numbers: a unit's `addrItem`, filled with every
/// instruction it emits and asked about every branch target as the unit is laid out.
/// Open addressing with a multiplicative hash, in place of a dictionary whose hashing was
/// a tenth of the layout of an image.
struct AddressIndex {
    private var keys: [UInt64] = []
    private var values: [Int32] = []
    private var shift: UInt64 = 64
    private(set) var count = 0

    init() {}

    /// Room for `n` entries without growing.
    mutating func reserveCapacity(_ n: Int) {
        var slots = 8
        while 3 * slots < 4 * n { slots <<= 1 }
        if slots > keys.count { rehash(slots) }
    }

    /// Empty, with room for `n` entries: the table kept when it is the right size (so
    /// that laying out one unit after another reuses it), else a fresh one.
    mutating func reset(expecting n: Int) {
        var slots = 8
        while 3 * slots < 4 * n { slots <<= 1 }
        if keys.count >= slots && keys.count <= 4 * slots {
            keys.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            count = 0
        } else {
            keys = []
            values = []
            count = 0
            rehash(slots)
        }
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    subscript(key: UInt64) -> Int? {
        guard !keys.isEmpty else { return nil }
        return keys.withUnsafeBufferPointer { k in
            let mask = k.count - 1
            var i = slot(key)
            while true {
                let here = k[i]
                if here == key { return Int(values[i]) }
                if here == 0 { return nil }
                i = (i + 1) & mask
            }
        }
    }

    /// Records `value` for `key` unless it has one already (the first item of an
    /// instruction is where branches to it land).
    mutating func insertIfAbsent(_ key: UInt64, _ value: Int) {
        precondition(key != 0, "address 0 in a unit's index")
        // At most three quarters full.
        if 4 * (count + 1) > 3 * keys.count { rehash(max(8, 2 * keys.count)) }
        let mask = keys.count - 1
        var i = slot(key)
        while true {
            let here = keys[i]
            if here == key { return }
            if here == 0 { break }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = Int32(value)
        count += 1
    }

    private mutating func rehash(_ slots: Int) {
        let oldKeys = keys, oldValues = values
        keys = [UInt64](repeating: 0, count: slots)
        values = [Int32](repeating: 0, count: slots)
        shift = UInt64(64 - slots.trailingZeroBitCount)
        count = 0
        for (k, v) in zip(oldKeys, oldValues) where k != 0 { insertIfAbsent(k, Int(v)) }
    }
}

/// One unit's items and where its blocks start.
struct CodeUnit {
    var items: [CodeItem] = []
    /// The items' extras (`CodeItem.extra`).
    var extras: [ItemExtra] = []
    /// The item of each original instruction emitted in this unit (for a function with
    /// the exit hook, the hook: it comes first).
    var addrItem = AddressIndex()
    var offsets: [Int] = []
    var size = 0
    /// This unit's local thunks, by (block, call): their item numbers, the unit's last.
    var localThunkItem: [LocalThunkKey: Int] = [:]
    /// Where the local thunks start: the size of everything before them.
    var thunkStart = 0
    /// Calls whose return the overlay manager sees (through a call thunk, the unit's own
    /// or `_dynamic_call_ind`): what the return stack is sized for.
    var returnSites = 0
    /// Only the figures are kept (`sizesOnly`): no items, offsets or index to encode.
    var sizesOnly = false

    struct LocalThunkKey: Hashable { var block: UInt64; var call: Bool }

    /// The unit with its figures only (size, thunks, return sites): what the memory
    /// account keeps, where encoding would need every item.
    func sizesOnlyCopy() -> CodeUnit {
        var u = CodeUnit()
        u.size = size
        u.localThunkItem = localThunkItem
        u.thunkStart = thunkStart
        u.returnSites = returnSites
        u.sizesOnly = true
        return u
    }

    /// Counts the return sites and finds where the thunks start, once the unit is laid out.
    mutating func noteFigures() {
        var sites = 0
        for it in items {
            switch it.kind {
            case .pushIndirect: sites += 1
            case .call:
                if case .callThunk = it.target { sites += 1 }
                if case .localThunk(_, true) = it.target { sites += 1 }
            default: break
            }
        }
        returnSites = sites
        let firstThunk = localThunkItem.values.min() ?? items.count
        thunkStart = firstThunk < items.count ? offsets[firstThunk] : size
    }

    /// Lays the unit out: offsets from sizes, relaxing short branches to blocks of this
    /// unit until every displacement fits. Address-independent: only relative distances
    /// inside the unit decide.
    mutating func layout() throws {
        while true {
            offsets.removeAll(keepingCapacity: true)
            offsets.reserveCapacity(items.count)
            var o = 0
            for it in items {
                if it.aligned { o = (o + 15) & ~15 }
                offsets.append(o)
                o += it.size
            }
            size = o
            var changed = false
            for i in items.indices {
                let it = items[i]
                guard case .code(let a) = it.target, let ti = addrItem[a] else { continue }
                switch it.kind {
                case .jump, .conditional:
                    if it.long { continue }
                    let d = offsets[ti] - (offsets[i] + 2)
                    if d < -128 || d > 127 { items[i].long = true; changed = true }
                case .shortOnly:
                    let d = offsets[ti] - (offsets[i] + it.bytes.count)
                    if d < -128 || d > 127 {
                        throw OvlError("a loop/jrcxz instruction at 0x\(String(it.original, radix: 16)) cannot reach its target after rewriting")
                    }
                default: continue
                }
            }
            if !changed { return }
        }
    }

    /// The unit's bytes at `base`, with `resolve` giving the address of references
    /// outside the unit.
    func encode(base: UInt64, resolve: (CodeRef) throws -> UInt64) throws -> [UInt8] {
        guard !sizesOnly else { throw OvlError("internal: a unit kept for its sizes only cannot be encoded") }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        func address(_ r: CodeRef) throws -> UInt64 {
            if case .code(let a) = r, let i = addrItem[a] { return base + UInt64(offsets[i]) }
            if case .localThunk(let b, let call) = r, let i = localThunkItem[LocalThunkKey(block: b, call: call)] { return base + UInt64(offsets[i]) }
            return try resolve(r)
        }
        func rel32(_ target: UInt64, from next: UInt64, at original: UInt64) throws -> [UInt8] {
            let d = Int64(bitPattern: target &- next)
            guard d >= Int64(Int32.min), d <= Int64(Int32.max) else {
                throw OvlError("a reference from 0x\(String(original, radix: 16)) is out of 32-bit reach after rewriting")
            }
            return le(UInt64(UInt32(truncatingIfNeeded: d)), 4)
        }
        for (i, it) in items.enumerated() {
            if out.count < offsets[i] { out += CodeUnit.nops(offsets[i] - out.count) }
            let at = base + UInt64(offsets[i])
            let next = at + UInt64(it.size)
            switch it.kind {
            case .raw, .pushIndirect:
                var b = it.bytes
                let extra = it.extra >= 0 ? extras[Int(it.extra)] : ItemExtra()
                if it.ripOffset >= 0 {
                    let insNext = at + UInt64(it.bytes.count)
                    b.write(try rel32(try address(extra.ripTarget), from: insNext, at: it.original), at: Int(it.ripOffset))
                }
                for f in extra.absolute {
                    let v = try address(f.ref)
                    // 32-bit fields hold user addresses (below 2 GB) or, in a kernel, sign-extended
                    // ones (R_X86_64_32S, the top 2 GB).
                    if f.size == 4 && v > 0x7fff_ffff && v < 0xffff_ffff_8000_0000 {
                        throw OvlError("a 32-bit code address at 0x\(String(it.original, radix: 16)) does not fit after rewriting")
                    }
                    b.write(le(v, f.size), at: f.offset)
                }
                out.append(contentsOf: b)
                if it.kind == .pushIndirect {
                    out.append(0xE8)
                    out += try rel32(try address(.manager(.dynamicCallIndirect)), from: next, at: it.original)
                }
            case .jump:
                let t = try address(it.target)
                if it.long { out.append(0xE9); out += try rel32(t, from: next, at: it.original) }
                else { out += [0xEB, UInt8(truncatingIfNeeded: Int64(bitPattern: t &- next))] }
            case .conditional(let cc):
                let t = try address(it.target)
                if it.long { out += [0x0F, 0x80 | cc]; out += try rel32(t, from: next, at: it.original) }
                else { out += [0x70 | cc, UInt8(truncatingIfNeeded: Int64(bitPattern: t &- next))] }
            case .shortOnly:
                let t = try address(it.target)
                var b = it.bytes
                b[b.count - 1] = UInt8(truncatingIfNeeded: Int64(bitPattern: t &- next))
                out.append(contentsOf: b)
            case .call:
                out.append(0xE8); out += try rel32(try address(it.target), from: next, at: it.original)
            case .exitHook:
                out.append(0xE8); out += try rel32(try address(.manager(.exitHook)), from: next, at: it.original)
            case .localThunk(let call):
                guard case .packed(let b) = it.target else { throw OvlError("internal: a local thunk without its target") }
                if !call { out += [0x48, 0x8D, 0x64, 0x24, 0x80] }
                out.append(0x68)
                out += le(try resolve(.packed(b)), 4)
                out.append(0xE9)
                out += try rel32(try address(.manager(call ? .dynamicCall : .dynamicJump)), from: next, at: b)
            }
        }
        return out
    }
}

extension CodeUnit {
    /// `n` bytes of no-ops in as few instructions as possible (the recommended multi-byte
    /// `nop` forms, at most 9 bytes each).
    static func nops(_ n: Int) -> [UInt8] {
        let forms: [[UInt8]] = [
            [0x90], [0x66, 0x90], [0x0F, 0x1F, 0x00], [0x0F, 0x1F, 0x40, 0x00], [0x0F, 0x1F, 0x44, 0x00, 0x00],
            [0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00], [0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00],
            [0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00], [0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        ]
        var out: [UInt8] = []
        var left = n
        while left > 0 {
            let k = min(left, forms.count)
            out += forms[k - 1]
            left -= k
        }
        return out
    }
}

/// Little-endian bytes of `v`.
func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
