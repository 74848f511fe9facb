import OvlCore

/// The explorer's top-level views, in tab order; the number is the key that shows it.
public enum ViewID: Int, CaseIterable, Sendable {
    case partition = 1, clusters, graph, steps, sweep, config

    public var title: String {
        switch self {
        case .partition: return "Partition"
        case .clusters: return "Clusters"
        case .graph: return "Graph"
        case .steps: return "Steps"
        case .sweep: return "Sweep"
        case .config: return "Config"
        }
    }
}

/// A cursor in a list, with the first visible row.
public struct ListCursor: Sendable, Equatable {
    public var row = 0
    public var top = 0

    public init(row: Int = 0, top: Int = 0) {
        self.row = row
        self.top = top
    }

    /// Keeps the cursor inside `count` rows and visible in a page of `page` rows.
    public mutating func clamp(count: Int, page: Int) {
        row = count == 0 ? 0 : min(max(0, row), count - 1)
        let p = max(1, page)
        if row < top { top = row }
        if row >= top + p { top = row - p + 1 }
        top = max(0, min(top, max(0, count - p)))
    }

    public mutating func move(_ delta: Int, count: Int, page: Int) {
        row += delta
        clamp(count: count, page: page)
    }
}

public enum PartitionSort: String, CaseIterable, Sendable {
    case heat, size, name, loads, whatIf = "what-if"
}

public enum PlacementFilter: String, CaseIterable, Sendable {
    case all, core, hot, cold
}

public enum ClusterSort: String, CaseIterable, Sendable {
    case id, size, loads, cost
}

public enum StepFilter: String, CaseIterable, Sendable {
    case all, merges, core = "into core", refusals, defragmentation
}

/// Whose chains a drilled-in chain list shows. Clusters are named by their lowest chain,
/// which survives re-clustering (cluster numbers do not).
public enum ChainSource: Sendable, Equatable {
    case function(Int32)
    case cluster(lowestChain: Int32)
    case resident
}

/// One level of drilling in from the partition or the cluster list.
public enum DrillLevel: Sendable, Equatable {
    case chains(ChainSource, ListCursor)
    case blocks(chain: Int32, ListCursor)
    case disassembly(block: Int32, ListCursor)

    var cursor: ListCursor {
        get {
            switch self {
            case .chains(_, let c), .blocks(_, let c), .disassembly(_, let c): return c
            }
        }
        set {
            switch self {
            case .chains(let s, _): self = .chains(s, newValue)
            case .blocks(let ch, _): self = .blocks(chain: ch, newValue)
            case .disassembly(let b, _): self = .disassembly(block: b, newValue)
            }
        }
    }
}

/// A node of the cluster graph by a name that survives re-clustering.
public enum NodeRef: Sendable, Equatable {
    case resident
    case cluster(lowestChain: Int32)
}

public struct PartitionState: Sendable {
    public var cursor = ListCursor()
    public var sort = PartitionSort.heat
    public var descending = true
    /// Name filter: a substring, or a glob when it has wildcards.
    public var filter = ""
    public var show = PlacementFilter.all
    /// Functions in display order.
    public var rows: [Int32] = []
    public var drill: [DrillLevel] = []
}

public struct ClusterListState: Sendable {
    public var cursor = ListCursor()
    public var sort = ClusterSort.id
    public var descending = false
    public var rows: [Int32] = []
    public var drill: [DrillLevel] = []
}

public struct GraphState: Sendable {
    public var center: NodeRef? = nil
    /// Nodes moved away from, for `Backspace`.
    public var path: [NodeRef] = []
    public var cursor = ListCursor()
    /// The selection the centre was last taken from.
    var syncedFocus: NodeRef? = nil
}

public struct StepState: Sendable {
    public var cursor = ListCursor()
    public var show = StepFilter.all
    /// Event indices shown.
    public var rows: [Int32] = []
}

public struct SweepState: Sendable {
    /// The configuration the points belong to (its γ aside) and the γ values.
    public var key: Config? = nil
    public var gammas: [Double] = []
    public var points: [SweepPoint?] = []
    public var selected = 0
    /// The optimiser's frontier instead of the γ sweep (`o`).
    public var showFrontier = false
    /// The configuration the frontier was computed for (`Effect.frontierKey`) and its points.
    public var frontierKey: Config? = nil
    public var frontier: [FrontierPoint]? = nil
    public var frontierSelected = 0
}

/// Settings the configuration view lists.
public enum ConfigRow: Sendable, Equatable {
    case gamma, bufferSize, buffers, pageSize, pageRead, preset, defragment, storage, granularity
    case coreHeading, core(Int), excludeHeading, exclude(Int)
    case resolvedHeading, resolved(Int32)
}

public enum PromptKind: Sendable, Equatable {
    case gamma, buffer, buffers, pageModel, pageSize, pageRead, coreGlob, excludeGlob
    case editCore(Int), editExclude(Int)
    case search, filter
    case exportPath(ExportKind)
}

/// A line of text being typed on the status line.
public struct Prompt: Sendable, Equatable {
    public var kind: PromptKind
    public var label: String
    public var text: String
    /// For the incremental search: where the cursor was when the prompt opened.
    var origin: Int = 0
    /// The text is the old value, selected: the first character typed replaces it
    /// (Backspace clears it, Right or End keeps it for editing).
    public var selected = false
}

public enum Overlay: Sendable, Equatable {
    case help(top: Int)
    case exportMenu(cursor: Int)
}

/// One configuration change, for undo and redo.
public struct Edit: Sendable {
    public var before: Config
    public var after: Config
    public var label: String
}

public struct Message: Sendable, Equatable {
    public var text: String
    public var isError: Bool
}

/// Everything the explorer shows and remembers. A value: the reducer returns a new one
/// for every input, views draw it, tests inspect it.
public struct ExplorerState: Sendable {
    public let model: ExplorerModel
    public var width: Int
    public var height: Int
    public var view = ViewID.partition
    /// The configuration asked for (the analysis may still be catching up).
    public var config: Config
    public var generation = 0
    /// The latest analysis of `config`, or of an earlier one while a new one runs.
    public var analysis: Analysis?
    /// Recent analyses, so undo and redo come back at once.
    var recent: [Analysis] = []
    /// Analyses worked out ahead of the edits likely next (`Effect.analyseAhead`), and
    /// the edits last asked for.
    var ahead: [Analysis] = []
    var aheadKey: [Config] = []
    /// Which way γ last moved (+1 or -1): the step ahead goes that way first.
    var gammaDirection = 1
    public var undoStack: [Edit] = []
    public var redoStack: [Edit] = []
    public var partition = PartitionState()
    public var clusters = ClusterListState()
    public var graph = GraphState()
    public var steps = StepState()
    public var sweep = SweepState()
    public var configCursor = ListCursor()
    /// What-if values for `whatIfConfig`, by function.
    public var whatIf: [Int32: WhatIf] = [:]
    var whatIfConfig: Config? = nil
    var whatIfRequested = Set<Int32>()
    /// The node last selected in any view: where the graph view centres when shown.
    var focus: NodeRef? = nil
    public var prompt: Prompt? = nil
    public var overlay: Overlay? = nil
    public var searchPattern = ""
    public var message: Message? = nil
    /// Set when the explorer should exit, with the status.
    public var exitStatus: Int32? = nil
    /// Where exports are offered to go by default.
    public var exportDirectory = ""
    /// The configuration as last written out (TOML export) or opened: quitting with
    /// another one on screen asks first.
    public var savedConfig: Config
    /// A TOML export under way, which becomes `savedConfig` when it succeeds.
    var pendingSave: Config? = nil
    /// `q` was pressed once with unsaved edits; a second `q` quits.
    var quitArmed = false

    public init(model: ExplorerModel, config: Config, width: Int, height: Int) {
        self.model = model
        self.config = config
        self.savedConfig = config
        self.width = width
        self.height = height
    }

    /// Whether the shown analysis is older than the configuration.
    public var isBusy: Bool { analysis?.config != config }

    /// The analysis, when it is of the current configuration.
    public var current: Analysis? { analysis.flatMap { $0.config == config ? $0 : nil } }
}

/// Where things are on the screen: shared by the views and by the reducer (page sizes,
/// mouse clicks).
public struct Layout: Sendable {
    public static let minWidth = 60
    public static let minHeight = 14
    public static let headerLines = 3

    public let width: Int
    public let height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    public var isTooSmall: Bool { width < Layout.minWidth || height < Layout.minHeight }
    public var tabRow: Int { Layout.headerLines }
    public var bodyTop: Int { Layout.headerLines + 1 }
    public var statusRow: Int { height - 1 }
    /// Rows between the tab bar and the status line.
    public var bodyHeight: Int { max(0, height - bodyTop - 1) }
}
