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

    static func parse(_ text: String, path: String, into profile: Profile, program: Program, chains: Chains) throws {
        var noLBR = false
        var symbols: [String: UInt64] = [:]
        for f in program.functions {
            symbols[f.name] = f.address
            for a in f.aliases { symbols[a] = f.address }
        }
        // BOLT names local symbols `name/file/N` and may add `.cold` fragments; try the plain name too.
        func address(_ kind: Substring, _ sym: Substring, _ off: Substring) -> UInt64? {
            guard let o = UInt64(off, radix: 16) else { return nil }
            if kind == "0" { return o }
            if let base = symbols[String(sym)] { return base + o }
            if let slash = sym.firstIndex(of: "/"), let base = symbols[String(sym[..<slash])] { return base + o }
            return nil
        }
        var lineNo = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            lineNo += 1
            if line.hasPrefix("boltedcollection") { continue }
            if line.hasPrefix("no_lbr") { noLBR = true; continue }
            let f = line.split(separator: " ")
            if noLBR {
                guard f.count == 4, let count = UInt64(f[3]) else {
                    throw OvlError.file(path, "line \(lineNo): expected `kind symbol offset count` in a no_lbr profile")
                }
                profile.stats.addresses += 1
                guard let a = address(f[0], f[1], f[2]) else { profile.unresolvedRecords.append(String(line)); profile.stats.foreign += 1; continue }
                if let b = program.block(containing: a) {
                    profile.stats.matched += 1
                    profile.blockCounts[b] += count
                } else { profile.stats.foreign += 1 }
                continue
            }
            guard f.count == 8, let count = UInt64(f[7]), UInt64(f[6]) != nil else {
                throw OvlError.file(path, "line \(lineNo): expected `kind symbol offset kind symbol offset mispredictions count`")
            }
            if f[0] == "2" || f[3] == "2" { continue }  // memory events
            profile.stats.addresses += 1
            guard let from = address(f[0], f[1], f[2]), let to = address(f[3], f[4], f[5]) else {
                profile.unresolvedRecords.append(String(line))
                profile.stats.foreign += 1
                continue
            }
            // The source is the branch instruction, inside a block; the target starts one.
            guard let fb = program.block(containing: from) else { profile.stats.foreign += 1; continue }
            guard let tb = program.block(containing: to) else { profile.stats.foreign += 1; continue }
            if program.isInstructionStart(from) && program.isInstructionStart(to) {
                profile.stats.matched += 1
            } else {
                profile.stats.misaligned += 1
                continue
            }
            profile.blockCounts[tb] += count
            profile.stats.blocksEntered += count
            let a = chains.blockChain[fb], b = chains.blockChain[tb]
            if a != b { profile.chainEdges[Profile.edgeKey(a, b), default: 0] += count }
        }
    }
}
