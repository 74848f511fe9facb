import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

/// `expected.json` is ovl's own output on the full kernel: a regression check, not an
/// oracle. These tests recompute the figures the extract can give from tools that share
/// nothing with ovl: readelf's symbol and section tables, objdump's disassembly (binutils,
/// not Zydis), and the trace files read here by their documented format.
@Suite(.serialized) struct LinuxOracleTests {
    /// One instruction as objdump decodes it.
    struct Insn {
        var address: UInt64
        var length: Int
        /// nop (any form), int3, or `xchg %ax,%ax`: what compilers and linkers pad with.
        var isPadding: Bool
        /// A jump, call, return or other instruction after which execution does not simply
        /// go on to the next one: where QEMU ends a translation block.
        var endsBlock: Bool
        /// The target of a direct jump, call or loop.
        var target: UInt64?
    }

    struct Symbol { var address: UInt64; var size: UInt64; var isFunction: Bool; var names: [String]; var section: Int }
    struct Section { var index: Int; var name: String; var address: UInt64; var size: UInt64 }

    /// What readelf and objdump say about the extract's analysed sections.
    struct Listing {
        var sections: [Section] = []
        var symbols: [UInt64: Symbol] = [:]
        var insns: [Insn] = []
        var starts: [UInt64] = []

        func index(of a: UInt64) -> Int? {
            var lo = 0, hi = starts.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if starts[mid] < a { lo = mid + 1 } else { hi = mid }
            }
            return lo < starts.count && starts[lo] == a ? lo : nil
        }
        /// Index of the first instruction at or after `a`.
        func lowerBound(_ a: UInt64) -> Int {
            var lo = 0, hi = starts.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if starts[mid] < a { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
    }

    static func run(_ tool: String, _ args: [String]) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Tools.path(tool))
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "\(tool) \(args.joined(separator: " ")) failed")
        return data
    }

    static let prefixes: Set<String> = ["data16", "addr32", "cs", "ds", "es", "ss", "fs", "gs", "rex", "rex.W", "lock",
                                        "notrack", "bnd", "rep", "repz", "repnz", "repe", "repne"]

    /// Whether objdump's mnemonic ends a straight run of execution.
    static func endsBlock(_ op: String) -> Bool {
        op.hasPrefix("j") || op.hasPrefix("call") || op.hasPrefix("ret") || op.hasPrefix("lret") || op.hasPrefix("loop")
            || op.hasPrefix("iret") || op.hasPrefix("sysret") || op.hasPrefix("ud")
            || ["syscall", "sysenter", "sysexit", "hlt", "int3", "int", "int1", "into"].contains(op)
    }

    static func listing(image: String, excluded: [String]) throws -> Listing {
        var l = Listing()
        // Sections: "  [ 1] .text  PROGBITS  ffffffff81000000 000140 4008b2 00  AX  0   0 64"
        let secText = String(decoding: try run("readelf", ["-SW", image]), as: UTF8.self)
        for line in secText.split(separator: "\n") {
            guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]"),
                  let idx = Int(line[line.index(after: open)..<close].trimmingCharacters(in: .whitespaces)) else { continue }
            let f = line[line.index(after: close)...].split(separator: " ")
            guard f.count >= 7, let addr = UInt64(f[2], radix: 16), let size = UInt64(f[4], radix: 16) else { continue }
            let flags = f[6]
            guard f[1] == "PROGBITS", flags.contains("A"), flags.contains("X"), size > 0, !excluded.contains(String(f[0])) else { continue }
            l.sections.append(Section(index: idx, name: String(f[0]), address: addr, size: size))
        }
        // Symbols: "  1234: ffffffff81000000   123 FUNC    GLOBAL DEFAULT    1 name"
        let symText = String(decoding: try run("readelf", ["-sW", image]), as: UTF8.self)
        for line in symText.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 8, f[0].hasSuffix(":"), let ndx = Int(f[6]),
                  let sec = l.sections.first(where: { $0.index == ndx }) else { continue }
            let type = f[3], name = String(f[7])
            guard type == "FUNC" || type == "NOTYPE" || type == "IFUNC", !name.hasPrefix(".L"),
                  let addr = UInt64(f[1], radix: 16), addr >= sec.address, addr < sec.address + sec.size else { continue }
            let size = f[2].hasPrefix("0x") ? UInt64(f[2].dropFirst(2), radix: 16)! : UInt64(f[2])!
            var s = l.symbols[addr] ?? Symbol(address: addr, size: 0, isFunction: false, names: [], section: ndx)
            s.size = max(s.size, size)
            s.isFunction = s.isFunction || type != "NOTYPE"
            s.names.append(name)
            l.symbols[addr] = s
        }
        // Instructions: "ffffffff81000000:\t48 8d 25 51 3f 80 00 \tlea    0x803f51(%rip),%rsp"
        let dis = try run("objdump", ["-d", "-w"] + l.sections.flatMap { ["-j", $0.name] } + [image])
        dis.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let b = raw.bindMemory(to: UInt8.self)
            var i = 0
            let n = b.count
            func hex(_ c: UInt8) -> UInt64? {
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt64(c - UInt8(ascii: "a") + 10)
                default: return nil
                }
            }
            while i < n {
                var end = i
                while end < n && b[end] != UInt8(ascii: "\n") { end += 1 }
                defer { i = end + 1 }
                // Address, then ":\t".
                var j = i, addr: UInt64 = 0, digits = 0
                while j < end, let h = hex(b[j]) { addr = addr << 4 | h; j += 1; digits += 1 }
                guard digits > 0, j + 1 < end, b[j] == UInt8(ascii: ":"), b[j + 1] == UInt8(ascii: "\t") else { continue }
                j += 2
                // Byte pairs separated by spaces, up to the tab before the mnemonic.
                var length = 0
                while j + 1 < end, hex(b[j]) != nil, hex(b[j + 1]) != nil { length += 1; j += 2; while j < end && b[j] == UInt8(ascii: " ") { j += 1 } }
                guard length > 0 else { continue }
                while j < end && (b[j] == UInt8(ascii: "\t") || b[j] == UInt8(ascii: " ")) { j += 1 }
                // The first word that is not a prefix.
                var words: [String] = []
                var k = j
                while k < end && words.count < 4 {
                    let w0 = k
                    while k < end && b[k] != UInt8(ascii: " ") && b[k] != UInt8(ascii: "\t") { k += 1 }
                    if k > w0 { words.append(String(decoding: UnsafeBufferPointer(rebasing: b[w0..<k]), as: UTF8.self)) }
                    while k < end && (b[k] == UInt8(ascii: " ") || b[k] == UInt8(ascii: "\t")) { k += 1 }
                }
                let op = words.first { !LinuxOracleTests.prefixes.contains($0) } ?? ""
                let operands = words.drop { $0 != op }.dropFirst().first ?? ""
                let padding = op.hasPrefix("nop") || op == "int3" || (op == "xchg" && operands == "%ax,%ax")
                let ends = LinuxOracleTests.endsBlock(op)
                l.insns.append(Insn(address: addr, length: length, isPadding: padding, endsBlock: ends,
                                    target: ends ? UInt64(operands, radix: 16) : nil))
            }
        }
        l.insns.sort { $0.address < $1.address }
        l.starts = l.insns.map(\.address)
        return l
    }

    /// Functions and code bytes from readelf and objdump, by README's definitions: a
    /// function is a symbol's extent (its size, cut at the next function symbol; a label
    /// without a size reaches the next symbol); code between symbols, and under a label
    /// without a size, is code from its first to its last instruction that is not
    /// padding. Returns the named functions (address → size), the stretches of code
    /// between symbols, and the code bytes.
    static func regions(_ l: Listing) -> (named: [UInt64: UInt64], gaps: Int, codeBytes: Int) {
        var named: [UInt64: UInt64] = [:]
        var gaps = 0, code = 0
        /// The code in [start, end) without leading and trailing padding.
        func trimmed(_ start: UInt64, _ end: UInt64) -> (UInt64, UInt64)? {
            var i = l.lowerBound(start)
            while i < l.insns.count && l.insns[i].address < end && l.insns[i].isPadding { i += 1 }
            guard i < l.insns.count, l.insns[i].address < end else { return nil }
            var k = l.lowerBound(end) - 1
            while k > i && l.insns[k].isPadding { k -= 1 }
            return (l.insns[i].address, l.insns[k].address + UInt64(l.insns[k].length))
        }
        for sec in l.sections {
            let starts = l.symbols.values.filter { $0.section == sec.index }.map(\.address).sorted()
            let sectionEnd = sec.address + sec.size
            var cursor = sec.address
            for (i, start) in starts.enumerated() {
                if start > cursor, let (a, b) = trimmed(cursor, start) { gaps += 1; code += Int(b - a) }
                guard start >= cursor else { continue }
                let s = l.symbols[start]!
                let next = i + 1 < starts.count ? starts[i + 1] : sectionEnd
                var end = s.size == 0 ? next : min(start + s.size, sectionEnd)
                if end > next, l.symbols[next]!.isFunction { end = next }
                if s.size == 0 {
                    if let (a, b) = trimmed(start, end) {
                        if a == start { named[start] = b - a } else { gaps += 1 }
                        code += Int(b - a)
                    }
                } else {
                    named[start] = end - start
                    code += Int(end - start)
                }
                cursor = end
            }
            if cursor < sectionEnd, let (a, b) = trimmed(cursor, sectionEnd) { gaps += 1; code += Int(b - a) }
        }
        return (named, gaps, code)
    }

    /// Translation-block start addresses of an ovl trace, read by the format documented
    /// in TraceFile.swift: "OVLTRACE", u32 version, u32 flags, u64 code hash, two u16-sized
    /// strings, u64 count, then zig-zag varint deltas.
    static func traceAddresses(_ path: String) throws -> [UInt64] {
        let d = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func le(_ o: Int, _ n: Int) -> UInt64 { (0..<n).reduce(0) { $0 | UInt64(d[o + $1]) << (8 * UInt64($1)) } }
        try #require(Array(d[0..<8]) == Array("OVLTRACE".utf8) && le(8, 4) == 1, "\(path): a version-1 ovl trace")
        var pos = 24
        for _ in 0..<2 { pos += 2 + Int(le(pos, 2)) }
        let count = Int(le(pos, 8))
        pos += 8
        var out: [UInt64] = []
        out.reserveCapacity(count)
        var pc: UInt64 = 0
        for _ in 0..<count {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let byte = d[pos]
                pos += 1
                v |= UInt64(byte & 0x7f) << shift
                shift += 7
                if byte < 0x80 { break }
            }
            let delta = (v >> 1) ^ (0 &- (v & 1))
            pc = pc &+ delta
            out.append(pc)
        }
        return out
    }

    static let listing: Result<Listing, Error> = Result {
        try listing(image: LinuxExtract.image, excluded: LinuxExtract.config.excludeSections)
    }

    /// Function count, every function's extent and the code bytes, from readelf's symbols
    /// and objdump's instructions.
    @Test(Tools.needed("xz", "readelf", "objdump"))
    func functionsAndCodeBytesAgreeWithBinutils() throws {
        let l = try LinuxOracleTests.listing.get()
        #expect(l.sections.map(\.name).contains(".text"))
        #expect(l.insns.count > 100_000)
        let (named, gaps, code) = LinuxOracleTests.regions(l)
        let p = LinuxExtract.program
        #expect(p.analysedSections.sorted() == l.sections.map(\.name).sorted())
        #expect(p.codeBytes == code, "code bytes: ovl \(p.codeBytes), binutils \(code)")
        let ours = p.functions.filter { !$0.isGap }
        #expect(ours.count == named.count, "functions under symbols: ovl \(ours.count), readelf \(named.count)")
        #expect(p.functions.count - ours.count == gaps, "stretches of code between symbols")
        var wrong: [String] = []
        for f in ours where named[f.address] != UInt64(f.size) {
            wrong.append("\(f.name) at \(String(f.address, radix: 16)): \(f.size) B, readelf \(named[f.address].map(String.init) ?? "none")")
        }
        #expect(wrong.isEmpty, "\(wrong.count) functions differ, e.g. \(wrong.prefix(5))")
        // Every function symbol readelf lists is one of ovl's functions, by name or alias.
        var names = Set<String>()
        for f in ours { names.insert(f.name); names.formUnion(f.aliases) }
        let lost = l.symbols.values.filter { $0.isFunction }.flatMap(\.names).filter { !names.contains($0) }
        #expect(lost.isEmpty, "function symbols ovl has not: \(lost.prefix(5))")
    }

    /// Executed code bytes of the two excerpts, counted in basic blocks as Table 1 does:
    /// every instruction from each translation block's start up to the first one that
    /// ends a block (a TB that QEMU cut short is followed by one that starts where it
    /// stopped, so walking on is right), each counted once. A TB can also start inside a
    /// straight run of instructions that nothing jumps into: the kernel patches its code
    /// at boot (alternatives, static keys), so what ran before it in the same block is not
    /// what the image shows (a patched jump before a nop sled in __switch_to_asm, a patched
    /// jump before rdtsc in native_sched_clock). That block ran from its start: the run
    /// back to the previous leader (a jump target, a symbol, the instruction after one
    /// that ends a block) counts too.
    @Test(Tools.needed("xz", "readelf", "objdump"))
    func executedCodeBytesAgreeWithTheTraces() throws {
        let l = try LinuxOracleTests.listing.get()
        var leaders = Set(l.symbols.keys)
        for insn in l.insns { if let t = insn.target { leaders.insert(t) } }
        var executed = [Bool](repeating: false, count: l.insns.count)
        var tbStarts = Set<UInt64>()
        for t in [LinuxExtract.bootTrace, LinuxExtract.workloadTrace] {
            tbStarts.formUnion(try LinuxOracleTests.traceAddresses(t))
        }
        #expect(tbStarts.count > 1000)
        func follows(_ i: Int) -> Bool {
            i > 0 && !l.insns[i - 1].endsBlock && l.insns[i - 1].address + UInt64(l.insns[i - 1].length) == l.insns[i].address
        }
        var enteredMidBlock = 0
        for a in tbStarts {
            guard let first = l.index(of: a) else { continue }  // outside the analysed code
            var i = first
            while i < l.insns.count && !executed[i] {
                executed[i] = true
                if l.insns[i].endsBlock { break }
                guard i + 1 < l.insns.count, follows(i + 1) else { break }
                i += 1
            }
            if !leaders.contains(a) && follows(first) {
                enteredMidBlock += 1
                var k = first
                while follows(k) && !leaders.contains(l.insns[k].address) {
                    k -= 1
                    executed[k] = true
                }
            }
        }
        var bytes = 0
        for (i, e) in executed.enumerated() where e { bytes += l.insns[i].length }
        let s = try LinuxProfileTests.open()
        #expect(s.executedCodeBytes == bytes, "executed code bytes: ovl \(s.executedCodeBytes), from the traces and objdump \(bytes) (\(enteredMidBlock) TBs start inside a block)")
    }
}
