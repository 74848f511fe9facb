/// What a key asks for. Bindings map keys to commands per context; the reducer acts on
/// commands, the help screen and the status line are generated from the bindings.
public enum Command: Hashable, Sendable {
    // Moving
    case up, down, pageUp, pageDown, top, bottom, left, right
    case open, back, quit, help, redraw
    case nextView, previousView, showView(ViewID)
    case search, searchNext, searchPrevious
    // Looking
    case sortNext, sortReverse, filter, stateFilter, kindFilter, nextMerge, previousMerge
    // Changing
    case togglePin, gammaUp, gammaDown, setGamma, setBuffer, setPageModel, addCoreGlob, addExclude, deleteEntry
    case undo, redo, export
    // The optimiser's frontier in the sweep view
    case frontier
}

/// Where a binding applies. A view's own bindings come before the ones that apply
/// everywhere.
public enum KeyContext: String, Hashable, Sendable, CaseIterable {
    case everywhere = "Everywhere"
    case partition = "Partition (hot/cold functions)"
    case clusters = "Clusters"
    case drill = "Chains, blocks and disassembly (drilled in)"
    case graph = "Cluster graph"
    case steps = "Coalescing steps"
    case sweep = "Sweep (γ)"
    case config = "Configuration"
}

public struct KeyBinding: Sendable {
    public var keys: [Key]
    public var command: Command
    public var context: KeyContext
    /// One line for the help screen.
    public var help: String
    /// A word or two for the status line, when the binding is worth showing there.
    public var hint: String?

    /// The keys as the help screen writes them: `j ↓`.
    public func keyLabel(ascii: Bool) -> String {
        return keys.map { $0.label(ascii: ascii) }.joined(separator: " ")
    }
}

/// Every key the explorer knows: lower-case keys look, upper-case keys (and `+ - Space`)
/// change the configuration, `u`/`Ctrl-R` undo and redo the changes.
import Foundation

public enum KeyTable {
    public static let bindings: [KeyBinding] = {
        func b(_ keys: [Key], _ c: Command, _ ctx: KeyContext, _ help: String, _ hint: String? = nil) -> KeyBinding {
            KeyBinding(keys: keys, command: c, context: ctx, help: help, hint: hint)
        }
        let ch: (Character) -> Key = { .char($0) }
        var t: [KeyBinding] = [
            // Partition
            b([ch(" ")], .togglePin, .partition, "pin or unpin the function as core (changes the configuration)", "pin"),
            b([ch("s")], .sortNext, .partition, "sort by heat, size, name, loads, what-if (estimated for every function that ran)", "sort"),
            b([ch("r")], .sortReverse, .partition, "reverse the sort order"),
            b([ch("f")], .filter, .partition, "filter functions by name (substring or glob; empty clears)", "filter"),
            b([ch("v")], .stateFilter, .partition, "show all, core, hot or cold functions only", "show"),
            b([.enter, ch("l"), .right], .open, .partition, "the function's chains", "chains"),
            // Clusters
            b([ch("s")], .sortNext, .clusters, "sort by id, size, loads, cost", "sort"),
            b([ch("r")], .sortReverse, .clusters, "reverse the sort order"),
            b([.enter, ch("l"), .right], .open, .clusters, "the cluster's chains", "chains"),
            // Drilled in
            b([.enter, ch("l"), .right], .open, .drill, "open: a chain's blocks, a block's disassembly", "open"),
            b([.backspace, ch("h"), .left], .back, .drill, "back out one level", "back"),
            b([ch(" ")], .togglePin, .drill, "pin or unpin the function of the selected chain", "pin"),
            // Graph
            b([.enter, ch("l"), .right], .open, .graph, "move to the selected neighbour", "go"),
            b([.backspace, ch("h"), .left], .back, .graph, "move back along the path taken", "back"),
            // Steps
            b([ch("]"), ch("m")], .nextMerge, .steps, "next merge (skips refusals)", "next merge"),
            b([ch("[")], .previousMerge, .steps, "previous merge"),
            b([ch("v")], .kindFilter, .steps, "show all steps, merges only, core absorptions, refusals, defragmentation", "show"),
            b([.enter], .open, .steps, "the cluster that step's first side ended in"),
            // Sweep
            b([ch("h"), .left], .left, .sweep, "previous γ point", "γ point"),
            b([ch("l"), .right], .right, .sweep, "next γ point"),
            b([.enter], .open, .sweep, "set γ to the selected point, or adopt the selected frontier point (changes the configuration)", "adopt"),
            b([ch("o")], .frontier, .sweep, "show the optimiser's memory/cost frontier (paging and Figure 2 beside it) or the γ sweep", "frontier"),
            // Configuration
            b([.enter], .open, .config, "edit the selected setting", "edit"),
            b([ch("D"), .delete], .deleteEntry, .config, "delete the selected core glob or exclusion", "delete"),
            // Everywhere: moving
            b([ch("k"), .up], .up, .everywhere, "up"),
            b([ch("j"), .down], .down, .everywhere, "down"),
            b([.pageUp, .ctrl("b")], .pageUp, .everywhere, "page up"),
            b([.pageDown, .ctrl("f")], .pageDown, .everywhere, "page down"),
            b([ch("g"), .home], .top, .everywhere, "first row"),
            b([ch("G"), .end], .bottom, .everywhere, "last row"),
            b([.backspace, .escape], .back, .everywhere, "back out, close"),
            b([ch("/")], .search, .everywhere, "search the current list", "search"),
            b([ch("n")], .searchNext, .everywhere, "next match"),
            b([ch("N")], .searchPrevious, .everywhere, "previous match"),
            b([.tab], .nextView, .everywhere, "next view"),
            b([.backTab], .previousView, .everywhere, "previous view"),
        ]
        for v in ViewID.allCases {
            t.append(b([.char(Character(String(v.rawValue)))], .showView(v), .everywhere, "\(v.title) view"))
        }
        t += [
            b([ch("?"), .f1], .help, .everywhere, "this help", "help"),
            b([ch("q")], .quit, .everywhere, "back out, close, or quit at the top", "quit"),
            b([.ctrl("l")], .redraw, .everywhere, "redraw the screen"),
            // Everywhere: changing
            b([ch("+")], .gammaUp, .everywhere, "raise γ by one point", "γ"),
            b([ch("-")], .gammaDown, .everywhere, "lower γ by one point"),
            b([ch("=")], .setGamma, .everywhere, "type a value for γ"),
            b([ch("B")], .setBuffer, .everywhere, "set the code buffer size (2048, 4K)"),
            b([ch("P")], .setPageModel, .everywhere, "set the flash page model: page size and read time (2048 130.9)"),
            b([ch("C")], .addCoreGlob, .everywhere, "add a core glob (name, glob, or section:NAME)"),
            b([ch("X")], .addExclude, .everywhere, "add a core exclusion glob"),
            b([ch("u")], .undo, .everywhere, "undo the last change", "undo"),
            b([.ctrl("r")], .redo, .everywhere, "redo"),
            b([ch("E")], .export, .everywhere, "export: TOML, DOT, ld script", "export"),
        ]
        return t
    }()

    /// The command for `key` in `contexts` (most specific first).
    public static func command(for key: Key, in contexts: [KeyContext]) -> Command? {
        for ctx in contexts {
            for b in bindings where b.context == ctx && b.keys.contains(key) {
                return b.command
            }
        }
        return nil
    }

    /// The help screen's lines: each context's bindings under its title.
    public static func helpLines(ascii: Bool) -> [(key: String, text: String, heading: Bool)] {
        var out: [(key: String, text: String, heading: Bool)] = []
        let order: [KeyContext] = [.everywhere] + KeyContext.allCases.filter { $0 != .everywhere }
        for ctx in order {
            let rows = bindings.filter { $0.context == ctx }
            guard !rows.isEmpty else { continue }
            if !out.isEmpty { out.append(("", "", false)) }
            out.append(("", ctx.rawValue, true))
            for r in rows { out.append((r.keyLabel(ascii: ascii), ascii ? r.help.replacingOccurrences(of: "γ", with: "gamma") : r.help, false)) }
        }
        out.append(("", "", false))
        out.append(("", "Reading the screens", true))
        for (t, m) in glossary {
            out.append((t, ascii ? m.replacingOccurrences(of: "γ", with: "gamma").replacingOccurrences(of: "Σ", with: "sum of") : m, false))
        }
        return out
    }

    /// What the columns and words on the screens mean: printed after the keys in the help.
    public static let glossary: [(term: String, meaning: String)] = [
        ("heat, runs", "times the function's (chain's) hottest block ran, all phases; the bar is on a log scale"),
        ("loads", "cluster loads caused by entering the function's (chain's) code, replaying the traces"),
        ("saved/KB", "estimate: loads saved per KB of resident code if the function were pinned (clustered and replayed again); + fewer loads, − more, ∞ when pinning adds no resident code"),
        ("core: pinned", "named by you (core.functions); core: glob, preset: matched by a glob or the built-in set"),
        ("core: required", "must stay resident for correctness (entry point, signal handler, undecodable code)"),
        ("hot", "absorbed into core within γ: resident; cold cN: in overlay cluster N; hot + cN: some of each"),
        ("oversize", "a chain larger than the code buffer: kept resident"),
        ("resident, total", "resident code with the overlay manager and its thunks; total is what the rewritten image holds: that, the manager's data, its return stack and the buffers"),
        ("vs paging, pg", "paging the original layout on demand in the same total memory: how many times fewer (×) or more (÷) loads ovl needs"),
        ("cost", "Est. cost = Σ ceil(size / page) × loads × page read time (paper §4.2); ≤ marks an edge-profile bound"),
        ("cluster {name}", "in the steps, a cluster is named by its first chain; core is the resident node"),
    ]

    /// The status line's key hints for the contexts in force.
    public static func hints(for contexts: [KeyContext], ascii: Bool) -> [(key: String, text: String)] {
        var out: [(key: String, text: String)] = []
        var seen = Set<String>()
        for ctx in contexts {
            for r in bindings where r.context == ctx {
                guard let h = r.hint, seen.insert(h).inserted else { continue }
                let key: String
                switch r.command {
                case .gammaUp: key = "+/-"
                case .open where r.keys.first == .enter: key = "Enter"
                case .back: key = "BS"
                default: key = r.keys[0].label(ascii: ascii)
                }
                out.append((key, ascii ? h.replacingOccurrences(of: "γ", with: "gamma") : h))
            }
        }
        return out
    }
}
