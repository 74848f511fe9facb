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

    /// Resolves the configuration against a program. The answer depends only on the
    /// preset, the core globs and the exclusions, so the program keeps the last answers:
    /// the explorer asks again for every pin, unpin and undo.
    public static func resolve(_ config: Config, program p: Program) -> CoreSet {
        let key = Key(preset: config.corePreset, functions: config.coreFunctions, exclude: config.coreExclude)
        if let known = p.coreSets.value(for: key) { return known }
        let core = compute(config, program: p)
        p.coreSets.store(core, for: key)
        return core
    }

    struct Key: Hashable, Sendable {
        var preset: CorePreset
        var functions: [String]
        var exclude: [String]
    }

    static func compute(_ config: Config, program p: Program) -> CoreSet {
        let basis = CoreSet.basis(p)
        // The preset's functions, then the configuration's globs and exclusions.
        var core = presetCore(config.corePreset, program: p, basis: basis)
        for g in config.coreFunctions where !core.apply(g, g.hasPrefix("section:") || Glob.hasWildcards(g) ? "config: \(g)" : "config", program: p, byName: basis.byName) {
            if !core.unmatchedGlobs.contains(g) { core.unmatchedGlobs.append(g) }
        }
        // Exclusions remove configured functions only.
        for g in config.coreExclude {
            // An exclusion is a glob over names and aliases (never a section).
            for f in CoreSet.nameMatches(g, program: p, byName: basis.byName) where core.reasons[f]?.origin == .configured {
                core.reasons[f] = nil
            }
        }
        // Required for correctness, whatever the configuration says (the first reason
        // found is the one given).
        for (f, why) in basis.required { core.add(f, .required, why) }
        return core
    }

    /// What resolving a configuration needs that does not depend on it: functions by name
    /// and alias, and the functions correctness requires resident, each with its reason.
    struct Basis: Sendable {
        let byName: [String: [Int32]]
        let required: [(Int32, String)]
    }

    /// The program's basis, computed once (a kernel's signal-handler scan alone reads every
    /// relocation of its code).
    static func basis(_ p: Program) -> Basis {
        if let known = p.coreBasis.value(for: 0) { return known }
        var byName: [String: [Int32]] = [:]
        for (i, f) in p.functions.enumerated() {
            byName[f.name, default: []].append(Int32(i))
            for a in f.aliases { byName[a, default: []].append(Int32(i)) }
        }
        var required: [(Int32, String)] = []
        for (i, f) in p.functions.enumerated() {
            if let r = f.requiredResidentReason { required.append((Int32(i), r)) }
        }
        if let entry = p.function(containing: p.elf.entry) { required.append((Int32(entry), "entry point")) }
        // A call to a function that returns twice (setjmp, vfork) saves its return address
        // in a context that a later longjmp or the child's exit resumes: that return site
        // must be where it was, so its function stays resident.
        for (f, callee) in callersOfReturnsTwice(p) { required.append((f, "calls \(callee), which returns twice")) }
        let handlers = signalHandlers(p)
        for (f, site) in handlers { required.append((f, "signal handler (installed at 0x\(String(site, radix: 16)))")) }
        // A handler runs whenever the signal arrives, perhaps in the middle of code in the
        // buffer: nothing it calls may load a cluster, so everything it reaches through
        // direct calls, jumps and jump tables stays resident too.
        for (f, callee) in reachedFromHandlers(p, handlers.map { $0.0 }) {
            required.append((f, "called from signal handler \(p.functions[Int(callee)].name)"))
        }
        let b = Basis(byName: byName, required: required)
        p.coreBasis.store(b, for: 0)
        return b
    }

    /// The functions a preset alone makes core (computed once per preset and program).
    static func presetCore(_ preset: CorePreset, program p: Program, basis: Basis) -> CoreSet {
        if let known = p.presetCores.value(for: preset) { return known }
        var core = CoreSet()
        for e in CorePresets.entries(preset, program: p) { core.apply(e.pattern, "preset: \(e.why)", program: p, byName: basis.byName) }
        p.presetCores.store(core, for: preset)
        return core
    }

    /// Makes the functions `pattern` names core (configured, for `why`). Whether it named
    /// any function.
    @discardableResult
    mutating func apply(_ pattern: String, _ why: String, program p: Program, byName: [String: [Int32]]) -> Bool {
        let fs = CoreSet.matches(pattern, program: p, byName: byName)
        for f in fs { add(f, .configured, why) }
        return !fs.isEmpty
    }

    /// The functions a core pattern names: `section:` and a section glob, else a name.
    static func matches(_ pattern: String, program p: Program, byName: [String: [Int32]]) -> [Int32] {
        pattern.hasPrefix("section:") ? sectionMatches(String(pattern.dropFirst("section:".count)), program: p)
            : nameMatches(pattern, program: p, byName: byName)
    }

    /// The functions a name or a glob over names and aliases names (globs are kept per
    /// program: a configuration's are matched again on every edit of the explorer's).
    static func nameMatches(_ glob: String, program p: Program, byName: [String: [Int32]]) -> [Int32] {
        if !Glob.hasWildcards(glob) { return byName[glob] ?? [] }
        let key = "name:" + glob
        if let known = p.patternMatches.value(for: key) { return known }
        let g = Glob.Compiled(glob)
        let out = p.functions.indices.filter { g.matches(p.functions[$0].name) || p.functions[$0].aliases.contains(where: g.matches) }.map { Int32($0) }
        p.patternMatches.store(out, for: key)
        return out
    }

    /// The functions in the sections a glob names; a kernel input section merged into
    /// vmlinux's .text is found by its bracketing symbols.
    static func sectionMatches(_ glob: String, program p: Program) -> [Int32] {
        let key = "section:" + glob
        if let known = p.patternMatches.value(for: key) { return known }
        let g = Glob.Compiled(glob)
        var out = p.functions.indices.filter { g.matches(p.functions[$0].section) }.map { Int32($0) }
        if out.isEmpty, !Glob.hasWildcards(glob), let r = KernelTextRanges.range(of: glob, in: p.elf) {
            out = p.functions.indices.filter { !p.functions[$0].isGap && r.contains(p.functions[$0].address) }.map { Int32($0) }
        }
        p.patternMatches.store(out, for: key)
        return out
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
