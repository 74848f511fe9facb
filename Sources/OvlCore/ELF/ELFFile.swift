import Foundation

/// A parsed ELF64 little-endian x86-64 image: sections, program headers, the symbol
/// table, relocation sections and the build-id. Every read is bounds-checked, so a
/// truncated or malformed file yields an `OvlError` naming the problem, never a crash.
public final class ELFFile: @unchecked Sendable {
    public struct Section: Sendable {
        public let index: Int
        public let name: String
        public let type: UInt32
        public let flags: UInt64
        public let address: UInt64
        public let offset: UInt64
        public let size: UInt64
        public let link: UInt32
        public let info: UInt32
        public let alignment: UInt64
        public let entrySize: UInt64

        public var isExecutable: Bool { flags & ELFFile.SHF_EXECINSTR != 0 }
        public var isAllocated: Bool { flags & ELFFile.SHF_ALLOC != 0 }
        public var hasFileBytes: Bool { type != ELFFile.SHT_NOBITS }
        public func contains(_ address: UInt64) -> Bool {
            address >= self.address && address < self.address &+ size
        }
    }

    public struct ProgramHeader: Sendable {
        public let type: UInt32
        public let flags: UInt32
        public let offset: UInt64
        public let virtualAddress: UInt64
        public let fileSize: UInt64
        public let memorySize: UInt64
        public let alignment: UInt64
    }

    public struct Symbol: Sendable {
        public let name: String
        public let value: UInt64
        public let size: UInt64
        public let type: UInt8
        public let binding: UInt8
        public let sectionIndex: UInt16

        public var isFunction: Bool { type == ELFFile.STT_FUNC }
        public var isSection: Bool { type == ELFFile.STT_SECTION }
    }

    public struct Relocation: Sendable {
        /// Address (in the image) of the field being relocated.
        public let offset: UInt64
        public let type: UInt32
        public let symbolIndex: UInt32
        public let addend: Int64
        /// Symbol value + addend: the address the field refers to.
        public let target: UInt64
    }

    /// A relocation section and the section it applies to.
    public struct RelocationSection: Sendable {
        public let name: String
        public let appliesTo: Int
        public let relocations: [Relocation]
    }

    public static let SHT_SYMTAB: UInt32 = 2
    public static let SHT_RELA: UInt32 = 4
    public static let SHT_NOTE: UInt32 = 7
    public static let SHT_NOBITS: UInt32 = 8
    public static let SHF_ALLOC: UInt64 = 0x2
    public static let SHF_EXECINSTR: UInt64 = 0x4
    public static let STT_OBJECT: UInt8 = 1
    public static let STT_FUNC: UInt8 = 2
    public static let STT_SECTION: UInt8 = 3
    public static let STT_GNU_IFUNC: UInt8 = 10
    public static let ET_EXEC: UInt16 = 2
    public static let ET_DYN: UInt16 = 3
    public static let PT_LOAD: UInt32 = 1
    public static let PT_INTERP: UInt32 = 3
    public static let PT_TLS: UInt32 = 7
    public static let R_X86_64_64: UInt32 = 1
    public static let R_X86_64_PC32: UInt32 = 2
    public static let R_X86_64_PLT32: UInt32 = 4
    public static let R_X86_64_32: UInt32 = 10
    public static let R_X86_64_32S: UInt32 = 11
    public static let R_X86_64_IRELATIVE: UInt32 = 37

    public let path: String
    public let bytes: [UInt8]
    public let type: UInt16
    public let entry: UInt64
    public let sections: [Section]
    /// Each allocated, non-empty section's address range and index, in section order:
    /// `section(containing:)` scans these plain values instead of copying every section
    /// (and retaining its name) on its way.
    private let allocatedSpans: [(low: UInt64, high: UInt64, index: Int)]
    public let programHeaders: [ProgramHeader]
    public let symbols: [Symbol]
    public let relocationSections: [RelocationSection]
    public let buildID: [UInt8]?

    public convenience init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                throw OvlError.file(path, isDir.boolValue ? "is a directory, not an ELF image" : "cannot be read")
            }
            throw OvlError.file(path, "no such file")
        }
        try self.init(path: path, bytes: [UInt8](data))
    }

    public init(path: String, bytes: [UInt8]) throws {
        self.path = path
        self.bytes = bytes
        let r = ByteReader(bytes: bytes, path: path)
        guard bytes.count >= 4, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw OvlError.file(path, "not an ELF file (no \\x7fELF magic)")
        }
        guard bytes.count >= 64 else { throw OvlError.file(path, "truncated ELF header (\(bytes.count) bytes)") }
        guard bytes[4] == 2 else { throw OvlError.file(path, "32-bit ELF; ovl reads 64-bit x86-64 images only") }
        guard bytes[5] == 1 else { throw OvlError.file(path, "big-endian ELF; ovl reads little-endian x86-64 images only") }
        let type = try r.u16(16)
        let machine = try r.u16(18)
        guard machine == 62 else {
            throw OvlError.file(path, "ELF for machine \(ELFFile.machineName(machine)), not x86-64")
        }
        guard type == ELFFile.ET_EXEC || type == ELFFile.ET_DYN else {
            let kind = type == 1 ? "a relocatable object (.o); link it first" : type == 4 ? "a core dump" : "ELF type \(type)"
            throw OvlError.file(path, "is \(kind), not an executable image")
        }
        self.type = type
        self.entry = try r.u64(24)
        let phoff = try r.u64(32)
        let shoff = try r.u64(40)
        let phentsize = Int(try r.u16(54))
        let phnum = Int(try r.u16(56))
        let shentsize = Int(try r.u16(58))
        var shnum = Int(try r.u16(60))
        var shstrndx = Int(try r.u16(62))

        guard shoff != 0 else { throw OvlError.file(path, "has no section headers (stripped of them?)") }
        guard shentsize == 64 else { throw OvlError.file(path, "unexpected section header size \(shentsize)") }
        guard shoff <= UInt64(bytes.count) else {
            throw OvlError.file(path, "truncated: section headers start past the end of the file")
        }
        if shnum == 0 { shnum = Int(clamping: try r.u64(Int(shoff) + 32)) }  // extended numbering
        if shstrndx == 0xffff { shstrndx = Int(try r.u32(Int(shoff) + 40)) }
        guard shnum <= bytes.count / 64, UInt64(shnum) * 64 <= UInt64(bytes.count) - shoff else {
            throw OvlError.file(path, "truncated: section headers end past the end of the file")
        }

        var raw: [(nameOff: UInt32, s: Section)] = []
        for i in 0..<shnum {
            let o = Int(shoff) + i * 64
            let s = Section(
                index: i, name: "", type: try r.u32(o + 4), flags: try r.u64(o + 8),
                address: try r.u64(o + 16), offset: try r.u64(o + 24), size: try r.u64(o + 32),
                link: try r.u32(o + 40), info: try r.u32(o + 44), alignment: try r.u64(o + 48),
                entrySize: try r.u64(o + 56))
            raw.append((try r.u32(o), s))
        }
        guard shstrndx < raw.count else { throw OvlError.file(path, "section name table index out of range") }
        let shstr = raw[shstrndx].s
        var sections: [Section] = []
        for (nameOff, s) in raw {
            if s.type != ELFFile.SHT_NOBITS && s.size > 0 {
                guard s.offset <= UInt64(bytes.count), s.size <= UInt64(bytes.count) &- s.offset else {
                    throw OvlError.file(path, "truncated: section #\(s.index) extends past the end of the file")
                }
            }
            let name = try r.cString(try r.offset(shstr.offset, plus: UInt64(nameOff)), limit: try r.offset(shstr.offset, plus: shstr.size))
            sections.append(Section(
                index: s.index, name: name, type: s.type, flags: s.flags, address: s.address,
                offset: s.offset, size: s.size, link: s.link, info: s.info, alignment: s.alignment,
                entrySize: s.entrySize))
        }
        self.sections = sections
        allocatedSpans = sections.indices.compactMap { i in
            let s = sections[i]
            return s.isAllocated && s.size > 0 ? (s.address, s.address &+ s.size, i) : nil
        }

        var phdrs: [ProgramHeader] = []
        if phoff != 0 && phnum > 0 {
            guard phentsize == 56 else { throw OvlError.file(path, "unexpected program header size \(phentsize)") }
            let phbase = try r.offset(phoff, plus: 0)
            for i in 0..<phnum {
                let o = phbase + i * 56
                phdrs.append(ProgramHeader(
                    type: try r.u32(o), flags: try r.u32(o + 4), offset: try r.u64(o + 8),
                    virtualAddress: try r.u64(o + 16), fileSize: try r.u64(o + 32),
                    memorySize: try r.u64(o + 40), alignment: try r.u64(o + 48)))
            }
        }
        self.programHeaders = phdrs

        // Symbol table.
        var symbols: [Symbol] = []
        if let symtab = sections.first(where: { $0.type == ELFFile.SHT_SYMTAB }) {
            guard Int(symtab.link) < sections.count else { throw OvlError.file(path, "symbol table's string table index is out of range") }
            let strtab = sections[Int(symtab.link)]
            let count = Int(min(symtab.size / 24, UInt64(bytes.count / 24)))
            symbols.reserveCapacity(count)
            let symbase = try r.offset(symtab.offset, plus: 0)
            let strLimit = try r.offset(strtab.offset, plus: strtab.size)
            for i in 0..<count {
                let o = symbase + i * 24
                let nameOff = try r.u32(o)
                let info = try r.u8(o + 4)
                symbols.append(Symbol(
                    name: nameOff == 0 ? "" : try r.cString(try r.offset(strtab.offset, plus: UInt64(nameOff)), limit: strLimit),
                    value: try r.u64(o + 8), size: try r.u64(o + 16), type: info & 0xf, binding: info >> 4,
                    sectionIndex: try r.u16(o + 6)))
            }
        }
        self.symbols = symbols

        // Relocation sections (kept by --emit-relocs).
        var relSections: [RelocationSection] = []
        for s in sections where s.type == ELFFile.SHT_RELA && s.size > 0 {
            let count = Int(min(s.size / 24, UInt64(bytes.count / 24)))
            let relbase = try r.offset(s.offset, plus: 0)
            var rels: [Relocation] = []
            rels.reserveCapacity(count)
            let usesSymtab = Int(s.link) < sections.count && sections[Int(s.link)].type == ELFFile.SHT_SYMTAB
            for i in 0..<count {
                let o = relbase + i * 24
                let off = try r.u64(o)
                let info = try r.u64(o + 8)
                let addend = Int64(bitPattern: try r.u64(o + 16))
                let symIndex = UInt32(info >> 32)
                var base: UInt64 = 0
                if usesSymtab && symIndex != 0 {
                    guard Int(symIndex) < symbols.count else {
                        throw OvlError.file(path, "relocation in \(s.name) names symbol #\(symIndex), past the symbol table")
                    }
                    base = symbols[Int(symIndex)].value
                }
                rels.append(Relocation(offset: off, type: UInt32(truncatingIfNeeded: info), symbolIndex: symIndex,
                                       addend: addend, target: base &+ UInt64(bitPattern: addend)))
            }
            relSections.append(RelocationSection(name: s.name, appliesTo: Int(s.info), relocations: rels))
        }
        self.relocationSections = relSections

        // Build-id note: namesz, descsz, type 3, "GNU\0", then the id.
        var buildID: [UInt8]? = nil
        if let note = sections.first(where: { $0.name == ".note.gnu.build-id" }), note.size >= 16, note.size < 4096 {
            let noteOff = try r.offset(note.offset, plus: 0)
            let namesz = Int(try r.u32(noteOff))
            let descsz = Int(try r.u32(noteOff + 4))
            let start = noteOff + 12 + ((namesz + 3) & ~3)
            if descsz > 0 && descsz <= 64 && start + descsz <= noteOff + Int(note.size) && start + descsz <= bytes.count {
                buildID = Array(bytes[start..<(start + descsz)])
            }
        }
        self.buildID = buildID
    }

    public func section(named name: String) -> Section? { sections.first { $0.name == name } }

    /// The section that holds `address` among allocated sections.
    public func section(containing address: UInt64) -> Section? {
        for span in allocatedSpans where address >= span.low && address < span.high { return sections[span.index] }
        return nil
    }

    /// File bytes of a section (empty for NOBITS).
    public func contents(of s: Section) -> ArraySlice<UInt8> {
        guard s.hasFileBytes else { return [] }
        return bytes[Int(s.offset)..<Int(s.offset + s.size)]
    }

    /// Whether the image was linked with relocations kept (`--emit-relocs`): a `.rela`
    /// section applying to an executable section.
    public var hasCodeRelocations: Bool {
        relocationSections.contains { $0.appliesTo < sections.count && sections[$0.appliesTo].isExecutable }
    }

    public var buildIDHex: String? { buildID.map { $0.map { String(format: "%02x", $0) }.joined() } }

    static func machineName(_ m: UInt16) -> String {
        switch m {
        case 3: return "i386"
        case 40: return "ARM"
        case 183: return "AArch64"
        case 243: return "RISC-V"
        case 8: return "MIPS"
        case 20, 21: return "PowerPC"
        default: return "#\(m)"
        }
    }
}

/// Bounds-checked little-endian reads over a byte array.
struct ByteReader {
    let bytes: [UInt8]
    let path: String

    private func check(_ o: Int, _ n: Int) throws {
        guard o >= 0, n >= 0, o <= bytes.count - n else {
            throw OvlError.file(path, "truncated: a read of \(n) bytes at offset \(o) runs past the end of the file (\(bytes.count) bytes)")
        }
    }
    /// `base + plus` as a file offset, when it lies within the file.
    func offset(_ base: UInt64, plus: UInt64) throws -> Int {
        let (sum, overflow) = base.addingReportingOverflow(plus)
        guard !overflow, sum <= UInt64(bytes.count) else {
            throw OvlError.file(path, "truncated or malformed: offset \(base)+\(plus) lies past the end of the file (\(bytes.count) bytes)")
        }
        return Int(sum)
    }
    func u8(_ o: Int) throws -> UInt8 { try check(o, 1); return bytes[o] }
    func u16(_ o: Int) throws -> UInt16 {
        try check(o, 2)
        return UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8
    }
    func u32(_ o: Int) throws -> UInt32 {
        try check(o, 4)
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) }.littleEndian
    }
    func u64(_ o: Int) throws -> UInt64 {
        try check(o, 8)
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) }.littleEndian
    }
    func cString(_ o: Int, limit: Int) throws -> String {
        try check(o, 0)
        let end = min(limit, bytes.count)
        var e = o
        while e < end && bytes[e] != 0 { e += 1 }
        guard e < end || (e == end && e < bytes.count) else {
            throw OvlError.file(path, "malformed string table (a name at offset \(o) is not terminated)")
        }
        return String(decoding: bytes[o..<e], as: UTF8.self)
    }
}

extension ELFFile {
    /// Whether the image is linked against shared libraries: it names an interpreter
    /// (`PT_INTERP`, the dynamic loader). A static PIE has none.
    public var isDynamicallyLinked: Bool { programHeaders.contains { $0.type == ELFFile.PT_INTERP } }

    /// The interpreter's path, when the image names one inside the file.
    public var interpreter: String? {
        guard let ph = programHeaders.first(where: { $0.type == ELFFile.PT_INTERP }), ph.fileSize > 1,
              ph.offset < UInt64(bytes.count), ph.fileSize <= UInt64(bytes.count) - ph.offset else { return nil }
        let start = Int(ph.offset), end = start + Int(ph.fileSize)
        return String(decoding: bytes[start..<end].prefix { $0 != 0 }, as: UTF8.self)
    }
}
