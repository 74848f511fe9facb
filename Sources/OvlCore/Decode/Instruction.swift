import CZydisShim

/// How a block's last instruction transfers control (the paper's edge kinds).
public enum TransferKind: UInt8, Sendable, CaseIterable {
    /// No transfer: the block ends because the next instruction is a branch target.
    case fallThrough = 0
    case jump = 1
    case conditionalJump = 2
    case call = 3
    case ret = 4
    case indirectJump = 5
    case indirectCall = 6
    /// ud2 and friends: control does not continue.
    case stop = 7
    /// Far jumps and calls: treated like indirect transfers.
    case far = 8

    /// Whether the next instruction in memory can run after this one (fall-through or
    /// the return site of a call).
    public var continues: Bool {
        switch self {
        case .fallThrough, .conditionalJump, .call, .indirectCall: return true
        case .jump, .ret, .indirectJump, .stop, .far: return false
        }
    }

    /// Whether the target is known from the instruction itself.
    public var isDirect: Bool { self == .jump || self == .conditionalJump || self == .call }
    public var isIndirect: Bool { self == .indirectJump || self == .indirectCall || self == .far }
    public var isCall: Bool { self == .call || self == .indirectCall }
    /// Whether the instruction ends a basic block.
    public var endsBlock: Bool { self != .fallThrough }

    public var label: String {
        switch self {
        case .fallThrough: return "fall-through"
        case .jump: return "jmp"
        case .conditionalJump: return "jcc"
        case .call: return "call"
        case .ret: return "ret"
        case .indirectJump: return "jmp*"
        case .indirectCall: return "call*"
        case .stop: return "stop"
        case .far: return "far"
        }
    }
}

/// One decoded x86-64 instruction (Zydis underneath).
public struct Instruction: Sendable {
    public var address: UInt64
    public var length: Int
    public var flow: TransferKind
    public var isPadding: Bool
    public var isRepString: Bool
    /// Absolute target of a direct branch.
    public var target: UInt64
    /// Offset and size of the relative branch immediate (for rewriting).
    public var immOffset: Int
    public var immSize: Int
    public var dispOffset: Int
    public var dispSize: Int
    public var disp: Int64
    public var memIsRIPRelative: Bool
    public var memHasIndex: Bool
    public var hasMemoryOperand: Bool
}

/// x86-64 instruction decoding through Zydis.
public enum X86Decoder {
    /// Decodes the instruction at `address` from `bytes` (which start at that address).
    /// Returns nil when the bytes are not a valid instruction.
    @inline(__always)
    public static func decode(_ bytes: UnsafeRawBufferPointer, at address: UInt64) -> Instruction? {
        var raw = ovl_insn()
        let ok = ovl_decode(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count, address, &raw)
        guard ok != 0 else { return nil }
        return Instruction(
            address: address, length: Int(raw.length), flow: TransferKind(rawValue: raw.flow) ?? .far,
            isPadding: raw.is_padding != 0, isRepString: raw.is_rep_string != 0,
            target: UInt64(bitPattern: raw.target), immOffset: Int(raw.imm_offset), immSize: Int(raw.imm_size),
            dispOffset: Int(raw.disp_offset), dispSize: Int(raw.disp_size), disp: raw.disp,
            memIsRIPRelative: raw.mem_rip != 0, memHasIndex: raw.mem_has_index != 0,
            hasMemoryOperand: raw.has_modrm_mem != 0)
    }

    /// AT&T text of the instruction at `address`, for the explorer's disassembly view.
    public static func format(_ bytes: ArraySlice<UInt8>, at address: UInt64) -> (text: String, length: Int)? {
        var buf = [CChar](repeating: 0, count: 256)
        let n = bytes.withUnsafeBufferPointer { p in
            ovl_format(p.baseAddress, p.count, address, &buf, buf.count)
        }
        guard n > 0 else { return nil }
        return (String(cString: buf), Int(n))
    }
}
