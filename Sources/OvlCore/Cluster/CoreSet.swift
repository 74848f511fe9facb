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

    /// The configuration's core globs (not the preset's) that name no function.
    public private(set) var unmatchedGlobs: [String] = []

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
        @discardableResult
        func apply(_ pattern: String, _ why: String) -> Bool {
            let before = core.reasons.count
            var anyMatch = false
            if pattern.hasPrefix("section:") {
                let sec = String(pattern.dropFirst("section:".count))
                var matched = false
                for (i, f) in p.functions.enumerated() where Glob.matches(sec, f.section) {
                    core.add(Int32(i), .configured, why)
                    matched = true
                }
                anyMatch = matched
                // A kernel input section merged into vmlinux's .text: its bracketing symbols.
                if !matched, !Glob.hasWildcards(sec), let r = KernelTextRanges.range(of: sec, in: p.elf) {
                    for (i, f) in p.functions.enumerated() where !f.isGap && r.contains(f.address) {
                        core.add(Int32(i), .configured, why)
                        anyMatch = true
                    }
                }
            } else if !Glob.hasWildcards(pattern) {
                for i in byName[pattern] ?? [] { core.add(i, .configured, why); anyMatch = true }
            } else {
                for (i, f) in p.functions.enumerated() where Glob.matches(pattern, f.name) || f.aliases.contains(where: { Glob.matches(pattern, $0) }) {
                    core.add(Int32(i), .configured, why)
                    anyMatch = true
                }
            }
            return anyMatch || core.reasons.count > before
        }
        let preset = CorePresets.entries(config.corePreset, program: p)
        for e in preset { apply(e.pattern, "preset: \(e.why)") }
        for g in config.coreFunctions where !apply(g, g.hasPrefix("section:") || Glob.hasWildcards(g) ? "config: \(g)" : "config") {
            if !core.unmatchedGlobs.contains(g) { core.unmatchedGlobs.append(g) }
        }
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
        // A call to a function that returns twice (setjmp, vfork) saves its return address
        // in a context that a later longjmp or the child's exit resumes: that return site
        // must be where it was, so its function stays resident.
        for (f, callee) in callersOfReturnsTwice(p) where core.reasons[f]?.origin != .required {
            core.add(f, .required, "calls \(callee), which returns twice")
        }
        let handlers = signalHandlers(p)
        for (f, site) in handlers {
            core.add(f, .required, "signal handler (installed at 0x\(String(site, radix: 16)))")
        }
        // A handler runs whenever the signal arrives, perhaps in the middle of code in the
        // buffer: nothing it calls may load a cluster, so everything it reaches through
        // direct calls, jumps and jump tables stays resident too.
        for (f, callee) in reachedFromHandlers(p, handlers.map { $0.0 }) where core.reasons[f] == nil || core.reasons[f]?.origin != .required {
            core.add(f, .required, "called from signal handler \(p.functions[Int(callee)].name)")
        }
        return core
    }

    /// Functions with a direct call to a function that returns twice, with its name.
    static func callersOfReturnsTwice(_ p: Program) -> [(Int32, String)] {
        var twice: [Int32: String] = [:]
        for (i, f) in p.functions.enumerated() {
            if let n = ([f.name] + f.aliases).first(where: CallReach.returnsTwice.contains) { twice[Int32(i)] = n }
        }
        guard !twice.isEmpty else { return [] }
        var out: [(Int32, String)] = []
        for (i, f) in p.functions.enumerated() {
            for b in f.blocks where p.blockKind[b] == .call && p.blockTarget[b] >= 0 {
                if let n = twice[p.blockFunction[Int(p.blockTarget[b])]], !twice.keys.contains(Int32(i)) { out.append((Int32(i), n)); break }
            }
        }
        return out
    }

    /// Functions reachable from `roots` through direct calls, direct jumps and resolved jump
    /// tables (not the roots themselves), each with the root it was reached from.
    static func reachedFromHandlers(_ p: Program, _ roots: [Int32]) -> [(Int32, Int32)] {
        var from: [Int32: Int32] = [:]
        var work: [(Int32, Int32)] = roots.map { ($0, $0) }
        var visited = Set(roots)
        var out: [(Int32, Int32)] = []
        while let (f, root) = work.popLast() {
            for b in p.functions[Int(f)].blocks {
                var targets: [Int32] = []
                switch p.blockKind[b] {
                case .call, .jump, .conditionalJump: if p.blockTarget[b] >= 0 { targets.append(p.blockTarget[b]) }
                case .indirectJump: targets += p.jumpTableTargets[Int32(b)] ?? []
                default: break
                }
                for t in targets {
                    let g = p.blockFunction[Int(t)]
                    if visited.insert(g).inserted {
                        from[g] = root
                        out.append((g, root))
                        work.append((g, root))
                    }
                }
            }
        }
        return out
    }

    /// Signal handlers, which must not load clusters (§3.4): functions whose address is
    /// taken in code of a function that calls signal(), sigaction() or the like. (The
    /// address usually goes into a `struct sigaction` several calls before the install,
    /// so any code address a function takes is suspect when it installs handlers.)
    static func signalHandlers(_ p: Program) -> [(Int32, UInt64)] {
        let installers: Set<String> = ["signal", "sigaction", "bsd_signal", "__sysv_signal", "__libc_sigaction", "sigset", "__sigaction"]
        var out: [(Int32, UInt64)] = []
        var seen = Set<Int32>()
        var installs: [Int32: Bool] = [:]
        func callsInstaller(_ fn: Int32) -> Bool {
            if let known = installs[fn] { return known }
            var yes = false
            for b in p.functions[Int(fn)].blocks where p.blockKind[b] == .call && p.blockTarget[b] >= 0 {
                let callee = p.functions[Int(p.blockFunction[Int(p.blockTarget[b])])]
                if installers.contains(callee.name) || callee.aliases.contains(where: installers.contains) { yes = true; break }
            }
            installs[fn] = yes
            return yes
        }
        for rs in p.elf.relocationSections {
            guard rs.appliesTo < p.elf.sections.count, p.elf.sections[rs.appliesTo].isExecutable else { continue }
            for r in rs.relocations where r.type == ELFFile.R_X86_64_32 || r.type == ELFFile.R_X86_64_32S || r.type == ELFFile.R_X86_64_64 || r.type == ELFFile.R_X86_64_PC32 {
                guard let f = p.function(containing: r.target), p.functions[f].address == r.target,
                      let b = p.block(containing: r.offset),
                      let installer = p.function(containing: r.offset), callsInstaller(Int32(installer)) else { continue }
                // A branch's own displacement is a call or jump, not an address taken.
                if p.blockKind[b].isDirect && r.offset + 4 == p.blockStart[b] + UInt64(p.blockSize[b]) { continue }
                if seen.insert(Int32(f)).inserted { out.append((Int32(f), r.offset)) }
            }
        }
        return out
    }
}
