/// The core: functions that stay in memory whatever the profile says. Some because the
/// configuration names them (globs, the preset), some because correctness requires it
/// (code that could not be decoded completely, the entry point, signal handlers).
public struct CoreSet: Sendable {
    public enum Origin: Sendable, Equatable {
        /// Named by the configuration: a glob of the user's, or the preset's.
        case configured
        /// Required for correctness; the user cannot unpin it.
        case required
    }

    /// Why each core function is core.
    public private(set) var reasons: [Int32: (origin: Origin, why: String)] = [:]

    public init() {}

    public var functions: [Int32] { reasons.keys.sorted() }
    public var count: Int { reasons.count }
    public func contains(_ f: Int32) -> Bool { reasons[f] != nil }
    public func reason(_ f: Int32) -> (origin: Origin, why: String)? { reasons[f] }

    mutating func add(_ f: Int32, _ origin: Origin, _ why: String) {
        if let existing = reasons[f], existing.origin == .required { return }
        reasons[f] = (origin, why)
    }

    /// Resolves the configuration against a program.
    public static func resolve(_ config: Config, program p: Program) -> CoreSet {
        var core = CoreSet()
        var byName: [String: [Int32]] = [:]
        for (i, f) in p.functions.enumerated() {
            byName[f.name, default: []].append(Int32(i))
            for a in f.aliases { byName[a, default: []].append(Int32(i)) }
        }
        func apply(_ pattern: String, _ why: String) {
            if pattern.hasPrefix("section:") {
                let sec = String(pattern.dropFirst("section:".count))
                var matched = false
                for (i, f) in p.functions.enumerated() where Glob.matches(sec, f.section) {
                    core.add(Int32(i), .configured, why)
                    matched = true
                }
                // A kernel input section merged into vmlinux's .text: its bracketing symbols.
                if !matched, !Glob.hasWildcards(sec), let r = KernelTextRanges.range(of: sec, in: p.elf) {
                    for (i, f) in p.functions.enumerated() where !f.isGap && r.contains(f.address) {
                        core.add(Int32(i), .configured, why)
                    }
                }
            } else if !Glob.hasWildcards(pattern) {
                for i in byName[pattern] ?? [] { core.add(i, .configured, why) }
            } else {
                for (i, f) in p.functions.enumerated() where Glob.matches(pattern, f.name) || f.aliases.contains(where: { Glob.matches(pattern, $0) }) {
                    core.add(Int32(i), .configured, why)
                }
            }
        }
        let preset = CorePresets.entries(config.corePreset, program: p)
        for e in preset { apply(e.pattern, "preset: \(e.why)") }
        for g in config.coreFunctions { apply(g, g.hasPrefix("section:") || Glob.hasWildcards(g) ? "config: \(g)" : "config") }
        // Exclusions remove configured functions only.
        if !config.coreExclude.isEmpty {
            for (f, r) in core.reasons where r.origin == .configured {
                let fn = p.functions[Int(f)]
                if config.coreExclude.contains(where: { g in Glob.matches(g, fn.name) || fn.aliases.contains(where: { a in Glob.matches(g, a) }) }) {
                    core.reasons[f] = nil
                }
            }
        }
        // Required for correctness.
        for (i, f) in p.functions.enumerated() {
            if let r = f.requiredResidentReason { core.add(Int32(i), .required, r) }
        }
        if let entry = p.function(containing: p.elf.entry) { core.add(Int32(entry), .required, "entry point") }
        for (f, site) in signalHandlers(p) {
            core.add(f, .required, "signal handler (installed at 0x\(String(site, radix: 16)))")
        }
        return core
    }

    /// Functions whose address is loaded in a block that then calls signal() or
    /// sigaction(): signal handlers, which must not load clusters (§3.4).
    static func signalHandlers(_ p: Program) -> [(Int32, UInt64)] {
        let installers: Set<String> = ["signal", "sigaction", "bsd_signal", "__sysv_signal", "__libc_sigaction", "sigset", "__sigaction"]
        var out: [(Int32, UInt64)] = []
        var seen = Set<Int32>()
        for rs in p.elf.relocationSections {
            guard rs.appliesTo < p.elf.sections.count, p.elf.sections[rs.appliesTo].isExecutable else { continue }
            for r in rs.relocations where r.type == ELFFile.R_X86_64_32 || r.type == ELFFile.R_X86_64_32S || r.type == ELFFile.R_X86_64_64 || r.type == ELFFile.R_X86_64_PC32 {
                guard let f = p.function(containing: r.target), p.functions[f].address == r.target,
                      let b = p.block(containing: r.offset) else { continue }
                // The installing call ends this block or the next one or two.
                var c = b
                while c < p.blockCount && c <= b + 2 {
                    if p.blockKind[c] == .call, p.blockTarget[c] >= 0 {
                        let callee = p.functions[Int(p.blockFunction[Int(p.blockTarget[c])])]
                        if installers.contains(callee.name) || callee.aliases.contains(where: installers.contains) {
                            if seen.insert(Int32(f)).inserted { out.append((Int32(f), r.offset)) }
                            break
                        }
                    }
                    if p.blockKind[c] == .call || !p.blockContinues[c] { break }
                    c += 1
                }
            }
        }
        return out
    }
}
