/// BOLT's `.fdata` branch profile, as perf2bolt writes it. Each line is a branch:
///
///     1 main 3c 1 main 4a 0 17
///
/// `from` and `to` locations are (kind, symbol, hex offset), then mispredictions and
/// the count. Kind 1 is a symbol and offset, 0 an absolute address (symbol `[unknown]`),
/// 2 a memory location (ignored). Files written in no-LBR mode start with `no_lbr` and
/// hold `kind symbol offset count` samples instead. Fall-through counts are not in the
/// file: the weights are those of taken branches, so loads computed from them are an
/// estimate.
public enum FData {
    static func looksLikeFData(_ text: String) -> Bool {
        guard let first = text.split(separator: "\n", maxSplits: 1).first else { return false }
        if first.hasPrefix("boltedcollection") || first.hasPrefix("no_lbr") { return true }
        let f = first.split(separator: " ")
        return (f.count == 8 || f.count == 4) && ["0", "1", "2"].contains(String(f[0])) && UInt64(f[2], radix: 16) != nil
    }

    /// The most a file's counts may add up to: 2^40 (about 10^12) branches, far more than
    /// any real profile holds, and small enough that loads and bytes derived from them
    /// (a sum over several profiles, times a cluster size) stay in range.
    public static let maximumTotalCount: UInt64 = 1 << 40

    /// Reads a `.fdata` file line by line from `stream` (memory stays bounded whatever
    /// its size).
    static func parse(_ stream: ByteStream, path: String, into profile: Profile, program: Program, chains: Chains) throws {
        var reader = Reader(path: path, profile: profile, program: program, chains: chains)
        try stream.forEachLine { line, n in try reader.line(line, n) }
    }

    /// The same from text in memory.
    static func parse(_ text: String, path: String, into profile: Profile, program: Program, chains: Chains) throws {
        var reader = Reader(path: path, profile: profile, program: program, chains: chains)
        var n = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            n += 1
            try reader.line(Array(line.utf8)[...], n)
        }
    }

    struct Reader {
        let path: String
        let profile: Profile
        let program: Program
        let chains: Chains
        var symbols: [String: UInt64] = [:]
        var noLBR = false
        var total: UInt64 = 0

        init(path: String, profile: Profile, program: Program, chains: Chains) {
            self.path = path
            self.profile = profile
            self.program = program
            self.chains = chains
            for f in program.functions {
                symbols[f.name] = f.address
                for a in f.aliases { symbols[a] = f.address }
            }
        }

        func error(_ lineNo: Int, _ message: String) -> OvlError {
            OvlError.file(path, "line \(lineNo): \(message)")
        }

        /// A location: nil when its symbol is not in the image; an error when the offset
        /// is not hex or symbol + offset does not fit in 64 bits.
        func address(_ kind: Substring, _ sym: Substring, _ off: Substring, _ lineNo: Int) throws -> UInt64? {
            guard let o = UInt64(off, radix: 16) else { throw error(lineNo, "offset '\(off)' is not a hexadecimal number") }
            if kind == "0" { return o }
            // BOLT names local symbols `name/file/N` and may add `.cold` fragments; try the plain name too.
            var base = symbols[String(sym)]
            if base == nil, let slash = sym.firstIndex(of: "/") { base = symbols[String(sym[..<slash])] }
            guard let base else { return nil }
            let (a, overflow) = base.addingReportingOverflow(o)
            if overflow { throw error(lineNo, "offset 0x\(off) from \(sym) lies beyond the 64-bit address space") }
            return a
        }

        /// Adds a record's count to the file's total, refusing totals no real profile has.
        mutating func add(_ count: UInt64, _ lineNo: Int) throws {
            let (t, overflow) = total.addingReportingOverflow(count)
            guard !overflow, t <= FData.maximumTotalCount else {
                throw error(lineNo, "the counts add up to more than 2^40 (\(FData.maximumTotalCount)) branches, more than any real profile holds")
            }
            total = t
        }

        /// Keeps the first records whose symbols are not in the image, for messages.
        func keepUnresolved(_ line: Substring) {
            if profile.unresolvedRecords.count < 100 { profile.unresolvedRecords.append(String(line)) }
        }

        mutating func line(_ bytes: ArraySlice<UInt8>, _ lineNo: Int) throws {
            var text = String(decoding: bytes, as: UTF8.self)
            if text.hasSuffix("\r") { text.removeLast() }
            let line = Substring(text)
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { return }
            if line.hasPrefix("boltedcollection") { return }
            if line.hasPrefix("no_lbr") { noLBR = true; return }
            let f = line.split(separator: " ")
            if noLBR {
                guard f.count == 4, let count = UInt64(f[3]) else {
                    throw error(lineNo, "expected `kind symbol offset count` in a no_lbr profile")
                }
                try add(count, lineNo)
                profile.stats.addresses += 1
                guard let a = try address(f[0], f[1], f[2], lineNo) else {
                    keepUnresolved(line); profile.stats.foreign += 1; return
                }
                if let b = program.block(containing: a) {
                    profile.stats.matched += 1
                    profile.blockCounts[b] += count
                } else { profile.stats.foreign += 1 }
                return
            }
            guard f.count == 8, let count = UInt64(f[7]), UInt64(f[6]) != nil else {
                throw error(lineNo, "expected `kind symbol offset kind symbol offset mispredictions count`")
            }
            if f[0] == "2" || f[3] == "2" { return }  // memory events
            try add(count, lineNo)
            profile.stats.addresses += 1
            let from = try address(f[0], f[1], f[2], lineNo), to = try address(f[3], f[4], f[5], lineNo)
            guard let from, let to else {
                keepUnresolved(line)
                profile.stats.foreign += 1
                return
            }
            // The source is the branch instruction, inside a block; the target starts one.
            guard let fb = program.block(containing: from) else { profile.stats.foreign += 1; return }
            guard let tb = program.block(containing: to) else { profile.stats.foreign += 1; return }
            if program.isInstructionStart(from) && program.isInstructionStart(to) {
                profile.stats.matched += 1
            } else {
                profile.stats.misaligned += 1
                return
            }
            profile.blockCounts[tb] += count
            profile.stats.blocksEntered += count
            let a = chains.blockChain[fb], b = chains.blockChain[tb]
            if a != b { profile.chainEdges[Profile.edgeKey(a, b), default: 0] += count }
        }
    }
}
