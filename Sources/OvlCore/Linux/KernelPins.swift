import Foundation

/// What a Linux kernel pins: besides branches, the kernel keeps code addresses in many
/// tables (exception tables, alternatives, static-call and jump-label sites, unwind
/// tables, …). With the relocations `vmlinux` keeps (`--emit-relocs`), every reference
/// from a non-code section into analysed code is found; each table is classified, and the
/// functions that cannot move — because the kernel looks them up or patches them by their
/// link address while it runs — are listed with the tables that pin them.
public struct KernelPins: Sendable, Codable {
    /// What a table's references mean for moving the code they point at.
    public enum Verdict: String, Sendable, Codable {
        /// Patched at its link address while the system runs: the code cannot move.
        case pins
        /// Looked up by address when a fault or trap happens (exception and bug tables):
        /// the code cannot move unless the lookup learns the overlay buffer's addresses.
        case lookup
        /// Used once at boot (patch sites) or only for diagnostics: a rewriter must apply
        /// or regenerate the entries, after which the code can move.
        case rewrite
        /// Function pointers: callers reach the function through them; a resident stub
        /// (or a rewritten pointer) lets the function move.
        case pointer
    }

    public struct Table: Sendable, Codable {
        /// The table: an ELF section, or a table the linker merged into one (bracketed by
        /// `__start_NAME`/`__stop_NAME` symbols), named by its input section.
        public let section: String
        /// The ELF section that holds it.
        public let container: String
        /// Where the references came from: the relocations, or (for a table whose
        /// relocations the build cleared after sorting it) the table's own entries.
        public let source: String
        public let allocated: Bool
        public let verdict: Verdict
        public let why: String
        /// Relocations of this section whose target lies in analysed code.
        public let references: Int
        /// …of which point at a function's first byte, and inside a function.
        public let atEntry: Int
        public let inside: Int
        /// Relocations into sections the configuration excludes (`.init.text`): not pins.
        public let intoExcluded: Int
        /// Distinct functions referenced, and their names (most-referenced first).
        public let functionCount: Int
        public let functions: [String]
    }

    public struct Pinned: Sendable, Codable {
        public let name: String
        public let address: UInt64
        public let size: Int
        /// Tables that pin it, and how many references each holds.
        public let tables: [String: Int]
        /// Why it was core already under the configuration, if it was.
        public let core: String?
    }

    public let image: String
    public let tables: [Table]
    /// References from executable sections (branches and address loads), by section:
    /// handled by the engine's control-flow graph, listed for completeness.
    public let codeReferences: [String: Int]
    public let pinned: [Pinned]
    /// Functions only `rewrite` tables reference: movable once those are rewritten.
    public let rewriteOnly: Int
    public let codeBytes: Int
    public let pinnedBytes: Int
    /// Pinned bytes not already core under the configuration.
    public let pinnedBeyondCoreBytes: Int
    public let excludedSections: [String]

    /// Known kernel tables. Unknown sections are judged by where they point: a function's
    /// entry is a function pointer, an address inside a function pins it.
    public static let known: [String: (Verdict, String)] = [
        "__ex_table": (.lookup, "exception table: a fault at a listed instruction (a user-memory access) is fixed up by looking the faulting address up"),
        "__bug_table": (.lookup, "BUG()/WARN() sites: the ud2 trap handler looks the trapping address up"),
        "__jump_table": (.pins, "jump labels: static_branch_enable/disable rewrite the jump at its link address while the system runs"),
        ".static_call_sites": (.pins, "static calls: static_call_update rewrites the call at its link address while the system runs"),
        ".smp_locks": (.pins, "LOCK prefixes patched at their link address when CPUs come and go"),
        "__mcount_loc": (.pins, "ftrace patches these function entries while the system runs"),
        "__patchable_function_entries": (.pins, "ftrace patches these function entries while the system runs"),
        "_kprobe_blacklist": (.lookup, "kprobes refuses probes in these address ranges"),
        "_error_injection_whitelist": (.lookup, "error injection looks functions up by address"),
        ".orc_unwind_ip": (.rewrite, "ORC unwind table, sorted by address: unwinding through moved code needs entries for its new address"),
        ".altinstructions": (.rewrite, "alternatives: patched once at boot (apply_alternatives); clusters must be stored already patched"),
        ".parainstructions": (.rewrite, "paravirt call sites patched once at boot"),
        ".retpoline_sites": (.rewrite, "indirect-call sites rewritten once at boot (apply_retpolines)"),
        ".return_sites": (.rewrite, "return-thunk sites rewritten once at boot (apply_returns)"),
        ".call_sites": (.rewrite, "call-depth tracking sites patched once at boot"),
        ".ibt_endbr_seal": (.rewrite, "ENDBR instructions sealed once at boot"),
        ".cfi_sites": (.rewrite, "CFI preambles patched once at boot"),
        ".init.data": (.pointer, "boot-only data (initcall tables, setup handlers): freed after boot"),
        ".init.rodata": (.pointer, "boot-only read-only data (IDT gate tables, early handlers): freed after boot"),
        "__param": (.pointer, "kernel parameter handlers"),
        ".pci_fixup": (.pointer, "PCI quirk handlers"),
        "__tracepoints_ptrs": (.pointer, "tracepoint pointers"),
        "static_call_tramp_key": (.pointer, "static-call trampoline keys"),
    ]

    /// Tables the linker merges into a bigger output section, by the `NAME` of their
    /// `__start_NAME`/`__stop_NAME` symbols, and the name reported for them.
    static let merged: [String: String] = [
        "__jump_table": "__jump_table",
        "static_call_sites": ".static_call_sites",
        "__ex_table": "__ex_table",
        "__bug_table": "__bug_table",
        "mcount_loc": "__mcount_loc",
        "__tracepoints_ptrs": "__tracepoints_ptrs",
        "static_call_tramp_key": "static_call_tramp_key",
        "__param": "__param",
        "___ksymtab": "__ksymtab",
        "___ksymtab_gpl": "__ksymtab_gpl",
        "__kprobe_blacklist": "_kprobe_blacklist",
        "_kprobe_blacklist": "_kprobe_blacklist",
        "_error_injection_whitelist": "_error_injection_whitelist",
    ]

    /// Tables whose entries are self-relative 32-bit code addresses, by entry size and
    /// the offsets of those fields: read directly when the build cleared the relocations
    /// (x86's sorttable sorts __ex_table after the link and turns its relocations into
    /// R_X86_64_NONE).
    static let selfRelative: [String: (stride: Int, fields: [Int])] = [
        "__ex_table": (12, [0, 4]),   // struct exception_table_entry { int insn, fixup, data; }
    ]

    /// Runs the analysis. `core` marks functions already resident under the configuration.
    public static func analyse(program p: Program, core: CoreSet) -> KernelPins {
        let elf = p.elf
        // Functions by address, for lookups that also land in a function's padding.
        let order = p.functions.indices.filter { !p.functions[$0].isGap && p.functions[$0].size > 0 }
            .sorted { p.functions[$0].address < p.functions[$1].address }
        let starts = order.map { p.functions[$0].address }
        func function(at a: UInt64) -> Int? {
            var lo = 0, hi = starts.count
            while lo < hi { let m = (lo + hi) / 2; if starts[m] <= a { lo = m + 1 } else { hi = m } }
            guard lo > 0 else { return nil }
            let f = order[lo - 1]
            return a < p.functions[f].end ? f : nil
        }
        let excludedRanges: [(String, Range<UInt64>)] = elf.sections
            .filter { $0.isExecutable && p.excludedSections.contains($0.name) }
            .map { ($0.name, $0.address..<($0.address + $0.size)) }
        let analysedRanges: [Range<UInt64>] = elf.sections
            .filter { $0.isExecutable && $0.isAllocated && p.analysedSections.contains($0.name) }
            .map { $0.address..<($0.address + $0.size) }

        var tables: [Table] = []
        var codeRefs: [String: Int] = [:]
        var pinTables: [Int: [String: Int]] = [:]
        var rewriteRefs = Set<Int>()
        // Tables merged into bigger output sections, found by their bracketing symbols.
        var bounds: [String: (start: UInt64?, stop: UInt64?)] = [:]
        for sym in elf.symbols where sym.sectionIndex != 0 {
            if sym.name.hasPrefix("__start_"), merged[String(sym.name.dropFirst(8))] != nil {
                bounds[String(sym.name.dropFirst(8)), default: (nil, nil)].start = sym.value
            } else if sym.name.hasPrefix("__stop_"), merged[String(sym.name.dropFirst(7))] != nil {
                bounds[String(sym.name.dropFirst(7)), default: (nil, nil)].stop = sym.value
            }
        }
        let mergedRanges: [(name: String, range: Range<UInt64>)] = bounds.compactMap { k, v in
            guard let a = v.start, let b = v.stop, a < b else { return nil }
            return (merged[k]!, a..<b)
        }

        // Every reference from a non-code section, by table.
        struct Key: Hashable { let table: String; let container: String }
        var targets: [Key: [UInt64]] = [:]
        var fromEntries = Set<Key>()
        var cleared: [Key: Range<UInt64>] = [:]
        for rs in elf.relocationSections {
            guard rs.appliesTo < elf.sections.count else { continue }
            let s = elf.sections[rs.appliesTo]
            if s.isExecutable {
                let n = rs.relocations.filter { r in r.type != 0 && analysedRanges.contains { $0.contains(r.target) } }.count
                if n > 0 { codeRefs[s.name, default: 0] += n }
                continue
            }
            for r in rs.relocations where r.type != 0 {
                let table = mergedRanges.first { $0.range.contains(r.offset) }?.name ?? s.name
                targets[Key(table: table, container: s.name), default: []].append(r.target)
            }
            // A self-relative table whose relocations were all cleared: read its entries.
            if selfRelative[s.name] != nil, rs.relocations.allSatisfy({ $0.type == 0 }) {
                cleared[Key(table: s.name, container: s.name)] = s.address..<(s.address + s.size)
            }
        }
        for (name, range) in mergedRanges where selfRelative[name] != nil {
            guard let s = elf.section(containing: range.lowerBound) else { continue }
            let key = Key(table: name, container: s.name)
            if targets[key] == nil { cleared[key] = range }
        }
        for (key, range) in cleared {
            guard let layout = selfRelative[key.table], let s = elf.section(containing: range.lowerBound), s.hasFileBytes else { continue }
            var list: [UInt64] = []
            var a = range.lowerBound
            while a + UInt64(layout.stride) <= range.upperBound {
                for f in layout.fields {
                    let at = Int(s.offset + (a - s.address)) + f
                    let v = Int32(bitPattern: UInt32(elf.bytes[at]) | UInt32(elf.bytes[at + 1]) << 8 | UInt32(elf.bytes[at + 2]) << 16 | UInt32(elf.bytes[at + 3]) << 24)
                    list.append((a + UInt64(f)) &+ UInt64(bitPattern: Int64(v)))
                }
                a += UInt64(layout.stride)
            }
            targets[key] = list
            fromEntries.insert(key)
        }

        for (key, list) in targets {
            var refs = 0, entry = 0, inside = 0, excluded = 0
            var perFunction: [Int: Int] = [:]
            var insideFunctions = Set<Int>()
            for t in list {
                if excludedRanges.contains(where: { $0.1.contains(t) }) { excluded += 1; continue }
                guard analysedRanges.contains(where: { $0.contains(t) }) else { continue }
                refs += 1
                guard let f = function(at: t) else { continue }
                perFunction[f, default: 0] += 1
                if p.functions[f].address == t { entry += 1 } else { inside += 1; insideFunctions.insert(f) }
            }
            guard refs > 0 || excluded > 0 else { continue }
            let s = elf.section(named: key.container)
            let verdict: Verdict
            let why: String
            if let k = known[key.table] {
                (verdict, why) = k
            } else if inside > 0 {
                verdict = .pins
                why = "holds addresses inside functions (labels, saved return addresses): the kernel uses them as they are"
            } else {
                verdict = .pointer
                why = "function pointers (operations tables, handlers)"
            }
            let ranked = perFunction.sorted { $0.value != $1.value ? $0.value > $1.value : p.functions[$0.key].address < p.functions[$1.key].address }
            tables.append(Table(section: key.table, container: key.container,
                                source: fromEntries.contains(key) ? "entries (relocations cleared by the build)" : "relocations",
                                allocated: s?.isAllocated ?? false, verdict: verdict, why: why,
                                references: refs, atEntry: entry, inside: inside, intoExcluded: excluded,
                                functionCount: perFunction.count, functions: ranked.map { p.functions[$0.key].name }))
            switch verdict {
            case .pins, .lookup:
                // An unknown table pins only what it points inside; its entry references are pointers.
                let pinned = known[key.table] != nil ? Set(perFunction.keys) : insideFunctions
                for f in pinned { pinTables[f, default: [:]][key.table] = perFunction[f] }
            case .rewrite:
                rewriteRefs.formUnion(perFunction.keys)
            case .pointer:
                break
            }
        }
        tables.sort { ($0.verdict.order, -$0.references) < ($1.verdict.order, -$1.references) }
        let pinned = pinTables.keys.sorted { p.functions[$0].address < p.functions[$1].address }.map { f in
            Pinned(name: p.functions[f].name, address: p.functions[f].address, size: p.functions[f].size,
                   tables: pinTables[f]!, core: core.reason(Int32(f))?.why)
        }
        let pinnedBytes = pinned.reduce(0) { $0 + $1.size }
        let beyond = pinned.filter { $0.core == nil }.reduce(0) { $0 + $1.size }
        return KernelPins(image: p.path, tables: tables, codeReferences: codeRefs, pinned: pinned,
                          rewriteOnly: rewriteRefs.subtracting(pinTables.keys).count,
                          codeBytes: p.codeBytes, pinnedBytes: pinnedBytes, pinnedBeyondCoreBytes: beyond,
                          excludedSections: p.excludedSections)
    }

    /// The report as text.
    public func text(listFunctions: Int = 8) -> String {
        var out = "Sections whose relocations reference analysed code (\((image as NSString).lastPathComponent))\n"
        if !excludedSections.isEmpty { out += "excluded, not counted: \(excludedSections.joined(separator: ", "))\n" }
        out += "\n"
        let rows = tables.map { t in
            [t.section + (t.container == t.section ? "" : " (in \(t.container))"), t.verdict.rawValue, Describe.count(t.references), Describe.count(t.atEntry), Describe.count(t.inside),
             Describe.count(t.intoExcluded), Describe.count(t.functionCount)]
        }
        out += Describe.table(["section", "verdict", "refs", "at entry", "inside", "→ excluded", "functions"], rows, leftAligned: [0, 1])
        out += "\n"
        for t in tables {
            let names = t.functions.prefix(listFunctions).joined(separator: ", ")
            out += "\(t.section) (\(t.verdict.rawValue)): \(t.why)\(t.source == "relocations" ? "" : "; read from its \(t.source)")\n"
            if !names.isEmpty { out += "    \(names)\(t.functions.count > listFunctions ? ", … (\(t.functions.count))" : "")\n" }
        }
        if !codeReferences.isEmpty {
            out += "\ncode → code references (branches, address loads; the control-flow graph handles them): "
            out += codeReferences.sorted { $0.value > $1.value }.map { "\($0.key) \(Describe.count($0.value))" }.joined(separator: ", ") + "\n"
        }
        let beyond = pinned.filter { $0.core == nil }
        out += "\nFunctions that cannot move: \(Describe.count(pinned.count)), \(Describe.count(pinnedBytes)) B of \(Describe.count(codeBytes)) B of code"
        out += String(format: " (%.1f%%)", codeBytes > 0 ? 100 * Double(pinnedBytes) / Double(codeBytes) : 0)
        out += "; \(Describe.count(beyond.count)) of them (\(Describe.count(pinnedBeyondCoreBytes)) B) are not core under the configuration.\n"
        out += "Movable once boot-time tables are rewritten: \(Describe.count(rewriteOnly)) more functions.\n\n"
        var byReason: [String: [Pinned]] = [:]
        for f in pinned { byReason[f.tables.keys.sorted().joined(separator: " + "), default: []].append(f) }
        for (reason, fs) in byReason.sorted(by: { $0.value.count > $1.value.count }) {
            let bytes = fs.reduce(0) { $0 + $1.size }
            out += "pinned by \(reason): \(fs.count) functions, \(Describe.count(bytes)) B\n"
            for f in fs {
                out += "    \(f.name)  \(f.size) B  0x\(String(f.address, radix: 16))"
                out += f.core.map { "  (core: \($0))" } ?? ""
                out += "\n"
            }
        }
        return out
    }

    /// A configuration fragment that adds the pinned functions to core, for a Table 1 that
    /// honours the kernel's pins.
    public func coreFunctionsTOML() -> [String] {
        Array(Set(pinned.filter { $0.core == nil }.map(\.name))).sorted()
    }
}

extension KernelPins.Verdict {
    var order: Int {
        switch self {
        case .pins: return 0
        case .lookup: return 1
        case .rewrite: return 2
        case .pointer: return 3
        }
    }
}
