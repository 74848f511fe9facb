import Foundation
import OvlCore

/// The explorer's behaviour as pure functions: a state and an input give the next state
/// and the work to do. No terminal, no threads: the front end and the tests drive it.
public enum Explorer {
    /// The first state, and the analysis it needs.
    public static func start(model: ExplorerModel, config: Config, width: Int, height: Int) -> (ExplorerState, [Effect]) {
        var s = ExplorerState(model: model, config: config, width: width, height: height)
        s.message = Message(text: "clustering \(model.imageName)…", isError: false)
        var fx: [Effect] = [.analyse(config, generation: 0)]
        fx += followUps(&s)
        return (s, fx)
    }

    /// The next state after `input`, and the effects to run.
    public static func handle(_ state: ExplorerState, _ input: Input) -> (ExplorerState, [Effect]) {
        var s = state
        var fx: [Effect] = []
        switch input {
        case .key(let k):
            s.message = nil
            let armed = s.quitArmed
            fx = key(&s, k)
            if armed { s.quitArmed = false }
        case .mouse(let kind, let x, let y):
            fx = mouse(&s, kind, x: x, y: y)
        case .resize(let w, let h):
            s.width = max(1, w)
            s.height = max(1, h)
            clampAll(&s)
            fx = [.redraw]
        case .engine(let e):
            fx = engine(&s, e)
        }
        fx += followUps(&s)
        return (s, fx)
    }

    // MARK: - Keys

    static func contexts(_ s: ExplorerState) -> [KeyContext] {
        switch Lists.active(s) {
        case .partition: return [.partition, .everywhere]
        case .clusters: return [.clusters, .everywhere]
        case .drill: return [.drill, .everywhere]
        case .graph: return [.graph, .everywhere]
        case .steps: return [.steps, .everywhere]
        case .config: return [.config, .everywhere]
        case .none: return s.view == .sweep ? [.sweep, .everywhere] : [.everywhere]
        }
    }

    static func key(_ s: inout ExplorerState, _ k: Key) -> [Effect] {
        if s.prompt != nil { return promptKey(&s, k) }
        if let o = s.overlay {
            switch o {
            case .help(let top): return helpKey(&s, k, top: top)
            case .exportMenu(let c): return exportMenuKey(&s, k, cursor: c)
            }
        }
        if k == .escape {
            if Lists.active(s) == .drill(s.view) { return perform(&s, .back) }
            return []
        }
        guard let cmd = KeyTable.command(for: k, in: contexts(s)) else {
            if case .char(let c) = k { s.message = Message(text: "\(c): no such key here (? shows the keys)", isError: true) }
            return []
        }
        return perform(&s, cmd)
    }

    static func perform(_ s: inout ExplorerState, _ cmd: Command) -> [Effect] {
        let list = Lists.active(s)
        let page = Lists.area(s, list).rows
        let count = Lists.count(s, list)
        func move(_ d: Int) {
            var c = Lists.cursor(s, list)
            c.move(d, count: count, page: page)
            Lists.setCursor(&s, list, c)
        }
        switch cmd {
        case .up where s.view == .sweep && s.sweep.showFrontier:
            s.sweep.frontierSelected = max(0, s.sweep.frontierSelected - 1)
        case .down where s.view == .sweep && s.sweep.showFrontier:
            s.sweep.frontierSelected = min(max(0, (s.sweep.frontier?.count ?? 0) - 1), s.sweep.frontierSelected + 1)
        case .up: move(-1)
        case .down: move(1)
        case .pageUp: move(-page)
        case .pageDown: move(page)
        case .top:
            if s.view == .sweep && s.sweep.showFrontier { s.sweep.frontierSelected = 0 }
            else if s.view == .sweep { s.sweep.selected = 0 } else { move(-count) }
        case .bottom:
            if s.view == .sweep && s.sweep.showFrontier { s.sweep.frontierSelected = max(0, (s.sweep.frontier?.count ?? 0) - 1) }
            else if s.view == .sweep { s.sweep.selected = max(0, s.sweep.gammas.count - 1) } else { move(count) }
        case .frontier:
            s.sweep.showFrontier.toggle()
            if s.sweep.showFrontier {
                let key = frontierKey(s.config)
                if s.sweep.frontierKey != key {
                    s.sweep.frontierKey = key
                    s.sweep.frontier = nil
                    s.sweep.frontierSelected = 0
                    s.message = Message(text: "optimising: buffer sizes, buffers and resident budgets, replayed; Enter adopts a point", isError: false)
                    return [.frontier(key)]
                }
            }
        case .left:
            if s.view == .sweep { s.sweep.selected = max(0, s.sweep.selected - 1) }
        case .right:
            if s.view == .sweep { s.sweep.selected = min(max(0, s.sweep.gammas.count - 1), s.sweep.selected + 1) }
        case .open: return open(&s)
        case .back: back(&s)
        case .quit:
            if case .drill = list { back(&s); break }
            if s.config != s.savedConfig && !s.quitArmed {
                let n = s.undoStack.count
                s.quitArmed = true
                s.message = Message(text: "\(n == 0 ? "the configuration has" : n == 1 ? "1 edit has" : "\(n) edits have") not been exported: q again quits and loses \(n == 1 ? "it" : "them"), E then t writes them as TOML", isError: true)
                return []
            }
            s.exitStatus = 0
        case .help: s.overlay = .help(top: 0)
        case .redraw: return [.redraw]
        case .nextView: show(&s, ViewID(rawValue: s.view.rawValue % ViewID.allCases.count + 1)!)
        case .previousView: show(&s, ViewID(rawValue: (s.view.rawValue + ViewID.allCases.count - 2) % ViewID.allCases.count + 1)!)
        case .showView(let v): show(&s, v)
        case .search:
            s.prompt = Prompt(kind: .search, label: "search", text: "", origin: Lists.cursor(s, list).row)
        case .searchNext: search(&s, forward: true, from: Lists.cursor(s, list).row + 1)
        case .searchPrevious: search(&s, forward: false, from: Lists.cursor(s, list).row - 1)
        case .sortNext:
            if s.view == .partition {
                let all = PartitionSort.allCases
                s.partition.sort = all[(all.firstIndex(of: s.partition.sort)! + 1) % all.count]
                s.partition.descending = s.partition.sort != .name
                rebuildPartition(&s)
                s.message = Message(text: "sorted by \(s.partition.sort.rawValue)" + (s.partition.sort == .whatIf ? " (estimates fill in as they are computed)" : ""), isError: false)
            } else if s.view == .clusters {
                let all = ClusterSort.allCases
                s.clusters.sort = all[(all.firstIndex(of: s.clusters.sort)! + 1) % all.count]
                s.clusters.descending = s.clusters.sort != .id
                rebuildClusters(&s)
                s.message = Message(text: "sorted by \(s.clusters.sort.rawValue)", isError: false)
            }
        case .sortReverse:
            if s.view == .partition { s.partition.descending.toggle(); rebuildPartition(&s) }
            else if s.view == .clusters { s.clusters.descending.toggle(); rebuildClusters(&s) }
        case .filter:
            s.prompt = Prompt(kind: .filter, label: "filter (substring or glob, empty shows all)", text: s.partition.filter)
        case .stateFilter:
            let all = PlacementFilter.allCases
            s.partition.show = all[(all.firstIndex(of: s.partition.show)! + 1) % all.count]
            rebuildPartition(&s)
            s.message = Message(text: "showing \(s.partition.show == .all ? "all" : s.partition.show.rawValue) functions", isError: false)
        case .kindFilter:
            let all = StepFilter.allCases
            s.steps.show = all[(all.firstIndex(of: s.steps.show)! + 1) % all.count]
            rebuildSteps(&s)
            s.message = Message(text: "showing \(s.steps.show.rawValue == "all" ? "all steps" : s.steps.show.rawValue)", isError: false)
        case .nextMerge, .previousMerge:
            guard let a = s.analysis, !s.steps.rows.isEmpty else { return [] }
            let forward = cmd == .nextMerge
            var i = s.steps.cursor.row + (forward ? 1 : -1)
            while i >= 0 && i < s.steps.rows.count {
                if a.events[Int(s.steps.rows[i])].kind != .refused {
                    s.steps.cursor.row = i
                    s.steps.cursor.clamp(count: s.steps.rows.count, page: page)
                    return []
                }
                i += forward ? 1 : -1
            }
            s.message = Message(text: forward ? "no merge after this step" : "no merge before this step", isError: false)
        case .togglePin: return togglePin(&s)
        case .gammaUp:
            let c = gammaStep(s.config, up: true)
            s.gammaDirection = 1
            return change(&s, to: c, label: "γ \(Describe.gamma(c.gamma))%")
        case .gammaDown:
            let c = gammaStep(s.config, up: false)
            s.gammaDirection = -1
            if c.gamma == s.config.gamma { s.message = Message(text: "γ is 0% already", isError: false); return [] }
            return change(&s, to: c, label: "γ \(Describe.gamma(c.gamma))%")
        case .setGamma: s.prompt = Prompt(kind: .gamma, label: "γ (%)", text: Describe.gamma(s.config.gamma), selected: true)
        case .setBuffer: s.prompt = Prompt(kind: .buffer, label: "code buffer size (bytes, or 4K)", text: String(s.config.bufferSize), selected: true)
        case .setPageModel:
            s.prompt = Prompt(kind: .pageModel, label: "flash page size and read time (bytes µs)",
                              text: "\(s.config.pageSize) \(Describe.number(s.config.pageReadMicroseconds))", selected: true)
        case .addCoreGlob: s.prompt = Prompt(kind: .coreGlob, label: "add core glob (name, glob or section:NAME)", text: "")
        case .addExclude: s.prompt = Prompt(kind: .excludeGlob, label: "add core exclusion (name or glob)", text: "")
        case .deleteEntry:
            guard s.view == .config else { return [] }
            let rows = Lists.configRows(s)
            guard s.configCursor.row < rows.count else { return [] }
            var c = s.config
            switch rows[s.configCursor.row] {
            case .core(let i):
                let g = c.coreFunctions.remove(at: i)
                return change(&s, to: c, label: "removed core glob \(g)")
            case .exclude(let i):
                let g = c.coreExclude.remove(at: i)
                return change(&s, to: c, label: "removed exclusion \(g)")
            default:
                s.message = Message(text: "only core globs and exclusions can be deleted", isError: true)
            }
        case .undo:
            guard let e = s.undoStack.popLast() else {
                s.message = Message(text: "nothing to undo", isError: false)
                return []
            }
            s.redoStack.append(e)
            return switchConfig(&s, to: e.before, message: "undone: \(e.label)")
        case .redo:
            guard let e = s.redoStack.popLast() else {
                s.message = Message(text: "nothing to redo", isError: false)
                return []
            }
            s.undoStack.append(e)
            return switchConfig(&s, to: e.after, message: "redone: \(e.label)")
        case .export: s.overlay = .exportMenu(cursor: 0)
        }
        return []
    }

    static func show(_ s: inout ExplorerState, _ v: ViewID) {
        s.view = v
        if v == .graph { syncGraph(&s) }
        // The steps' rows follow the analysis only while they are on screen (`install`).
        if v == .steps { rebuildSteps(&s) }
    }

    // MARK: Opening and backing out

    static func open(_ s: inout ExplorerState) -> [Effect] {
        let list = Lists.active(s)
        let cur = Lists.cursor(s, list).row
        let count = Lists.count(s, list)
        switch list {
        case .partition:
            guard cur < count else { return [] }
            s.partition.drill.append(.chains(.function(s.partition.rows[cur]), ListCursor()))
        case .clusters:
            guard cur < count, let a = s.analysis else { return [] }
            let k = Int(s.clusters.rows[cur])
            s.clusters.drill.append(.chains(.cluster(lowestChain: a.clustering.clusterChains[k].first ?? 0), ListCursor()))
        case .drill(let v):
            var d = Lists.drillStack(s, v)
            guard let level = d.last, cur < count else { return [] }
            let rows = Lists.rows(of: level, s)
            switch level {
            case .chains: d.append(.blocks(chain: rows[cur], ListCursor()))
            case .blocks: d.append(.disassembly(block: rows[cur], ListCursor()))
            case .disassembly(let b, _):
                let ins = Lists.instructions(ofBlock: Int(b), s.model)
                guard let t = ins[cur].target, let tb = s.model.program.block(startingAt: t) ?? s.model.program.block(containing: t) else {
                    s.message = Message(text: "not a direct branch: nothing to follow", isError: false)
                    return []
                }
                d.append(.disassembly(block: Int32(tb), ListCursor()))
                s.message = Message(text: "followed the branch to 0x\(String(t, radix: 16)) (Backspace returns)", isError: false)
            }
            Lists.setDrillStack(&s, v, d)
        case .graph:
            guard let a = s.analysis, cur < count else { return [] }
            let c = s.graph.center ?? .resident
            let n = Lists.graphNeighbours(s)[cur].node
            s.graph.path.append(c)
            s.graph.center = Lists.ref(n, a)
            s.graph.syncedFocus = s.graph.center
            s.graph.cursor = ListCursor()
        case .steps:
            guard let a = s.analysis, cur < count else { return [] }
            let e = a.events[Int(s.steps.rows[cur])]
            let src: ChainSource = e.a < 0 ? .resident : .cluster(lowestChain: e.a)
            s.view = .clusters
            s.clusters.drill = [.chains(src, ListCursor())]
        case .config:
            return editConfigRow(&s)
        case .none:
            if s.view == .sweep, s.sweep.showFrontier {
                guard let f = s.sweep.frontier, s.sweep.frontierSelected < f.count else { return [] }
                let p = f[s.sweep.frontierSelected]
                var c = s.config
                c.method = .affinity; c.residentBudget = p.residentBudget; c.bufferSize = p.bufferSize; c.buffers = p.buffers
                return change(&s, to: c, label: "frontier point: \(p.buffers) × \(Describe.count(p.bufferSize)) B, resident budget \(Describe.count(p.residentBudget)) B")
            }
            if s.view == .sweep, s.sweep.selected < s.sweep.gammas.count {
                var c = s.config
                c.gamma = s.sweep.gammas[s.sweep.selected]
                return change(&s, to: c, label: "γ \(Describe.gamma(c.gamma))%")
            }
        }
        return []
    }

    static func back(_ s: inout ExplorerState) {
        switch s.view {
        case .partition, .clusters:
            var d = Lists.drillStack(s, s.view)
            if !d.isEmpty { d.removeLast() }
            Lists.setDrillStack(&s, s.view, d)
        case .graph:
            if let prev = s.graph.path.popLast() {
                s.graph.center = prev
                s.graph.syncedFocus = prev
                s.graph.cursor = ListCursor()
            }
        default: break
        }
    }

    // MARK: Configuration changes

    /// Applies a new configuration as one undoable edit.
    static func change(_ s: inout ExplorerState, to new: Config, label: String) -> [Effect] {
        do {
            try new.validate(source: label)
        } catch {
            s.message = Message(text: "\(error)", isError: true)
            return []
        }
        guard new != s.config else {
            s.message = Message(text: "no change", isError: false)
            return []
        }
        s.undoStack.append(Edit(before: s.config, after: new, label: label))
        if s.undoStack.count > 500 { s.undoStack.removeFirst() }
        s.redoStack.removeAll()
        return switchConfig(&s, to: new, message: label)
    }

    static func switchConfig(_ s: inout ExplorerState, to new: Config, message: String) -> [Effect] {
        s.config = new
        s.generation += 1
        s.message = Message(text: message, isError: false)
        if let cached = s.recent.first(where: { $0.config == new }) {
            install(&s, cached)
            return []
        }
        if let ready = s.ahead.first(where: { $0.config == new }) {
            // Worked out while the user looked at the last one.
            s.ahead.removeAll { $0.config == new }
            s.recent.insert(ready, at: 0)
            if s.recent.count > 12 { s.recent.removeLast() }
            install(&s, ready)
            return []
        }
        return [.analyse(new, generation: s.generation, events: s.view == .steps)]
    }

    /// γ one point up (to the next whole point) or down (not below 0).
    static func gammaStep(_ c: Config, up: Bool) -> Config {
        var c = c
        c.gamma = up ? (c.gamma + 1).rounded(.down) : max(0, (c.gamma - 1).rounded(.up))
        return c
    }

    static func togglePin(_ s: inout ExplorerState) -> [Effect] {
        guard let f = pinTarget(s) else { return [] }
        switch pinEdit(s, f) {
        case .refused(let why):
            s.message = Message(text: why, isError: true)
            return []
        case .edit(let c, let label):
            return change(&s, to: c, label: label)
        }
    }

    /// The function the pin key acts on: the one under the cursor of the active list.
    static func pinTarget(_ s: ExplorerState) -> Int32? {
        switch Lists.active(s) {
        case .partition:
            guard s.partition.cursor.row < s.partition.rows.count else { return nil }
            return s.partition.rows[s.partition.cursor.row]
        case .drill(let v):
            guard let level = Lists.drillStack(s, v).last else { return nil }
            let rows = Lists.rows(of: level, s)
            let cur = level.cursor.row
            guard cur < rows.count else { return nil }
            switch level {
            case .chains: return Int32(s.model.chainFunction(Int(rows[cur])))
            case .blocks: return s.model.program.blockFunction[Int(rows[cur])]
            case .disassembly(let b, _): return s.model.program.blockFunction[Int(b)]
            }
        default:
            return nil
        }
    }

    enum PinEdit {
        case edit(Config, label: String)
        case refused(String)
    }

    /// Pinning `f`, or unpinning it when it is core already.
    static func pinEdit(_ s: ExplorerState, _ f: Int32) -> PinEdit {
        let p = s.model.program
        let name = p.functions[Int(f)].name
        let core = s.current?.core ?? CoreSet.resolve(s.config, program: p)
        if let r = core.reason(f) {
            if r.origin == .required {
                return .refused("\(name) is core for correctness (\(r.why)): it cannot be unpinned")
            }
            return .edit(s.config.unpinning(name, in: p), label: "unpinned \(name)")
        }
        return .edit(s.config.pinning(name, in: p), label: "pinned \(name)")
    }

    static func editConfigRow(_ s: inout ExplorerState) -> [Effect] {
        let rows = Lists.configRows(s)
        guard s.configCursor.row < rows.count else { return [] }
        var c = s.config
        switch rows[s.configCursor.row] {
        case .gamma: s.prompt = Prompt(kind: .gamma, label: "γ (%)", text: Describe.gamma(c.gamma), selected: true)
        case .bufferSize: s.prompt = Prompt(kind: .buffer, label: "code buffer size (bytes, or 4K)", text: String(c.bufferSize), selected: true)
        case .buffers: s.prompt = Prompt(kind: .buffers, label: "code buffers (1-64)", text: String(c.buffers), selected: true)
        case .pageSize: s.prompt = Prompt(kind: .pageSize, label: "flash page size (bytes)", text: String(c.pageSize), selected: true)
        case .pageRead: s.prompt = Prompt(kind: .pageRead, label: "flash page read time (µs)", text: Describe.number(c.pageReadMicroseconds), selected: true)
        case .preset:
            let all = CorePreset.allCases
            c.corePreset = all[(all.firstIndex(of: c.corePreset)! + 1) % all.count]
            return change(&s, to: c, label: "core preset \(c.corePreset.rawValue)")
        case .defragment:
            c.defragmentIntoCore.toggle()
            return change(&s, to: c, label: "defragment into core \(c.defragmentIntoCore ? "on" : "off")")
        case .storage:
            let all = StorageBackend.allCases
            c.storage = all[(all.firstIndex(of: c.storage)! + 1) % all.count]
            return change(&s, to: c, label: "storage \(c.storage.rawValue)")
        case .granularity:
            s.message = Message(text: "granularity is fixed once the profiles are read: reopen with --granularity \(c.granularity == .block ? "function" : "block")", isError: true)
        case .coreHeading: s.prompt = Prompt(kind: .coreGlob, label: "add core glob (name, glob or section:NAME)", text: "")
        case .excludeHeading: s.prompt = Prompt(kind: .excludeGlob, label: "add core exclusion (name or glob)", text: "")
        case .core(let i): s.prompt = Prompt(kind: .editCore(i), label: "core glob (empty deletes it)", text: c.coreFunctions[i])
        case .exclude(let i): s.prompt = Prompt(kind: .editExclude(i), label: "exclusion (empty deletes it)", text: c.coreExclude[i])
        case .resolvedHeading, .resolved:
            s.message = Message(text: "the resolved core set follows the globs above and the preset; pin or unpin functions in the Partition view", isError: false)
        }
        return []
    }

    // MARK: Prompts

    static func promptKey(_ s: inout ExplorerState, _ k: Key) -> [Effect] {
        guard var p = s.prompt else { return [] }
        switch k {
        case .escape, .ctrl("g"), .ctrl("c"):
            if p.kind == .search {
                var c = Lists.cursor(s, Lists.active(s))
                c.row = p.origin
                c.clamp(count: Lists.count(s, Lists.active(s)), page: Lists.area(s, Lists.active(s)).rows)
                Lists.setCursor(&s, Lists.active(s), c)
            }
            s.prompt = nil
            return []
        case .enter:
            s.prompt = nil
            return submit(&s, p)
        case .backspace:
            if p.selected { p.text = "" } else if !p.text.isEmpty { p.text.removeLast() }
            p.selected = false
        case .ctrl("u"):
            p.text = ""
            p.selected = false
        case .char(let c):
            if p.selected { p.text = "" }
            p.selected = false
            p.text.append(c)
        case .right, .end:
            p.selected = false
        default:
            return []
        }
        s.prompt = p
        if p.kind == .search {
            s.searchPattern = p.text
            if !p.text.isEmpty { search(&s, forward: true, from: p.origin, quiet: true) }
        }
        return []
    }

    static func submit(_ s: inout ExplorerState, _ p: Prompt) -> [Effect] {
        let text = p.text.trimmingCharacters(in: .whitespaces)
        var c = s.config
        func bad(_ m: String) -> [Effect] {
            s.message = Message(text: m, isError: true)
            return []
        }
        switch p.kind {
        case .gamma:
            var t = text
            if t.hasSuffix("%") { t.removeLast() }
            guard let g = Double(t.trimmingCharacters(in: .whitespaces)), g.isFinite else { return bad("γ must be a number of percent, such as 4 or 2.5, not '\(text)'") }
            c.gamma = g
            return change(&s, to: c, label: "γ \(Describe.gamma(g))%")
        case .buffer:
            guard let v = SizeParser.parse(text) else { return bad("the buffer size must be bytes such as 2048 or 4K, not '\(text)'") }
            c.bufferSize = v
            return change(&s, to: c, label: "buffer \(Describe.count(v)) B")
        case .buffers:
            guard let v = Int(text) else { return bad("the number of buffers must be a whole number, not '\(text)'") }
            c.buffers = v
            return change(&s, to: c, label: "\(v) code buffer\(v == 1 ? "" : "s")")
        case .pageModel:
            let parts = text.split(whereSeparator: { $0 == " " || $0 == "/" || $0 == "@" || $0 == "," }).map(String.init)
            guard let first = parts.first, let size = SizeParser.parse(first) else { return bad("give a page size and optionally a read time: 2048 130.9") }
            c.pageSize = size
            if parts.count > 1 {
                var t = parts[1]
                for suffix in ["µs", "us"] where t.hasSuffix(suffix) { t.removeLast(suffix.count) }
                guard let us = Double(t), us.isFinite else { return bad("the page read time must be microseconds, not '\(parts[1])'") }
                c.pageReadMicroseconds = us
            }
            return change(&s, to: c, label: "page \(Describe.count(c.pageSize)) B, \(Describe.number(c.pageReadMicroseconds)) µs a page")
        case .pageSize:
            guard let v = SizeParser.parse(text) else { return bad("the page size must be bytes such as 2048 or 4K, not '\(text)'") }
            c.pageSize = v
            return change(&s, to: c, label: "page \(Describe.count(v)) B")
        case .pageRead:
            guard let v = Double(text), v.isFinite else { return bad("the page read time must be microseconds, not '\(text)'") }
            c.pageReadMicroseconds = v
            return change(&s, to: c, label: "page read \(Describe.number(v)) µs")
        case .coreGlob:
            guard !text.isEmpty else { return [] }
            guard !c.coreFunctions.contains(text) else { return bad("\(text) is a core glob already") }
            c.coreFunctions.append(text)
            let n = CoreSet.resolve(c, program: s.model.program).count - CoreSet.resolve(s.config, program: s.model.program).count
            return change(&s, to: c, label: "core glob \(text) (\(n >= 0 ? "+" : "")\(n) core functions)")
        case .excludeGlob:
            guard !text.isEmpty else { return [] }
            guard !c.coreExclude.contains(text) else { return bad("\(text) is excluded already") }
            c.coreExclude.append(text)
            return change(&s, to: c, label: "exclusion \(text)")
        case .editCore(let i):
            guard i < c.coreFunctions.count else { return [] }
            if text.isEmpty { c.coreFunctions.remove(at: i) } else { c.coreFunctions[i] = text }
            return change(&s, to: c, label: text.isEmpty ? "removed a core glob" : "core glob \(text)")
        case .editExclude(let i):
            guard i < c.coreExclude.count else { return [] }
            if text.isEmpty { c.coreExclude.remove(at: i) } else { c.coreExclude[i] = text }
            return change(&s, to: c, label: text.isEmpty ? "removed an exclusion" : "exclusion \(text)")
        case .search:
            s.searchPattern = p.text
            if !p.text.isEmpty { search(&s, forward: true, from: p.origin) }
        case .filter:
            s.partition.filter = text
            rebuildPartition(&s)
            s.message = Message(text: text.isEmpty ? "filter cleared" : "\(Describe.count(s.partition.rows.count, "function")) \(s.partition.rows.count == 1 ? "matches" : "match") '\(text)'", isError: false)
        case .exportPath(let kind):
            guard !text.isEmpty else { return bad("no file name given") }
            guard let a = s.current else { return bad("the clustering is still running; export again when it is done") }
            s.pendingSave = kind == .toml ? a.config : nil
            return [.export(kind, path: text, analysis: a)]
        }
        return []
    }

    // MARK: Search

    static func search(_ s: inout ExplorerState, forward: Bool, from start: Int, quiet: Bool = false) {
        let pattern = s.searchPattern.lowercased()
        guard !pattern.isEmpty else {
            s.message = Message(text: "no search yet: / searches", isError: false)
            return
        }
        let list = Lists.active(s)
        let n = Lists.count(s, list)
        guard n > 0 else { return }
        for step in 0..<n {
            let i = ((forward ? start + step : start - step) % n + n) % n
            if Lists.searchText(s, list, row: i).contains(pattern) {
                var c = Lists.cursor(s, list)
                c.row = i
                c.clamp(count: n, page: Lists.area(s, list).rows)
                Lists.setCursor(&s, list, c)
                let wrapped = forward ? i < start : i > start
                if wrapped && !quiet { s.message = Message(text: "search wrapped", isError: false) }
                return
            }
        }
        s.message = Message(text: "'\(s.searchPattern)' not found", isError: true)
    }

    // MARK: Overlays

    static func helpKey(_ s: inout ExplorerState, _ k: Key, top: Int) -> [Effect] {
        let lines = KeyTable.helpLines(ascii: false).count
        let page = max(1, Layout(width: s.width, height: s.height).bodyHeight - 2)
        let maxTop = max(0, lines - page)
        switch k {
        case .char("j"), .down: s.overlay = .help(top: min(maxTop, top + 1))
        case .char("k"), .up: s.overlay = .help(top: max(0, top - 1))
        case .pageDown, .ctrl("f"), .char(" "): s.overlay = .help(top: min(maxTop, top + page))
        case .pageUp, .ctrl("b"): s.overlay = .help(top: max(0, top - page))
        case .char("g"), .home: s.overlay = .help(top: 0)
        case .char("G"), .end: s.overlay = .help(top: maxTop)
        default: s.overlay = nil
        }
        return []
    }

    static func exportMenuKey(_ s: inout ExplorerState, _ k: Key, cursor: Int) -> [Effect] {
        let kinds = ExportKind.allCases
        switch k {
        case .char("j"), .down: s.overlay = .exportMenu(cursor: min(kinds.count - 1, cursor + 1))
        case .char("k"), .up: s.overlay = .exportMenu(cursor: max(0, cursor - 1))
        case .enter: chooseExport(&s, kinds[cursor])
        case .char(let c):
            if let kind = kinds.first(where: { $0.key == c }) { chooseExport(&s, kind) } else { s.overlay = nil }
        default: s.overlay = nil
        }
        return []
    }

    static func chooseExport(_ s: inout ExplorerState, _ kind: ExportKind) {
        s.overlay = nil
        switch kind {
        case .ldScript where s.config.granularity != .function:
            s.message = Message(text: "the ld script lists whole functions: reopen with --granularity function", isError: true)
        default:
            let base = s.model.imageName.isEmpty ? "ovl" : s.model.imageName
            s.prompt = Prompt(kind: .exportPath(kind), label: "write \(kind == .toml ? "TOML" : kind == .dot ? "DOT" : kind == .ldScript ? "ld script" : "the rewritten image") to", text: s.exportDirectory + base + "." + kind.fileExtension)
        }
    }

    // MARK: - Mouse

    static func mouse(_ s: inout ExplorerState, _ kind: MouseKind, x: Int, y: Int) -> [Effect] {
        let l = Layout(width: s.width, height: s.height)
        if s.prompt != nil { return [] }
        if let o = s.overlay {
            switch o {
            case .help(let top):
                if kind == .wheelUp { return helpKey(&s, .up, top: top) }
                if kind == .wheelDown { return helpKey(&s, .down, top: top) }
                s.overlay = nil
            case .exportMenu:
                let box = ExportMenuView.box(l)
                let i = y - box.y - 2
                if kind == .click || kind == .doubleClick, i >= 0, i < ExportKind.allCases.count, x >= box.x, x < box.x + box.w {
                    chooseExport(&s, ExportKind.allCases[i])
                } else if kind == .click {
                    s.overlay = nil
                }
            }
            return []
        }
        if y == l.tabRow, kind == .click || kind == .doubleClick {
            for (v, range) in TabBar.ranges(width: s.width) where range.contains(x) {
                show(&s, v)
                return []
            }
            return []
        }
        let list = Lists.active(s)
        if s.view == .sweep {
            if kind == .wheelUp { return perform(&s, .left) }
            if kind == .wheelDown { return perform(&s, .right) }
            if let i = SweepView.point(at: x, y: y, s) {
                s.sweep.selected = i
                if kind == .doubleClick { return open(&s) }
            }
            return []
        }
        let (top, rows) = Lists.area(s, list)
        let count = Lists.count(s, list)
        var c = Lists.cursor(s, list)
        switch kind {
        case .wheelUp, .wheelDown:
            let d = kind == .wheelUp ? -3 : 3
            c.top = max(0, min(max(0, count - rows), c.top + d))
            c.row = min(max(c.row, c.top), c.top + rows - 1)
            c.clamp(count: count, page: rows)
            Lists.setCursor(&s, list, c)
        case .click, .doubleClick:
            let i = c.top + (y - top)
            guard y >= top, y < top + rows, i < count else { return [] }
            c.row = i
            Lists.setCursor(&s, list, c)
            if kind == .doubleClick { return open(&s) }
        }
        return []
    }

    // MARK: - Engine events

    static func engine(_ s: inout ExplorerState, _ e: EngineEvent) -> [Effect] {
        switch e {
        case .analysed(let a, _):
            s.recent.removeAll { $0.config == a.config }
            s.recent.insert(a, at: 0)
            if s.recent.count > 12 { s.recent.removeLast() }
            if a.config == s.config {
                let first = s.analysis == nil
                install(&s, a)
                if first, s.message?.text.hasPrefix("clustering") == true { s.message = nil }
            }
        case .analysedAhead(let a):
            guard !s.recent.contains(where: { $0.config == a.config }) else { return [] }
            s.ahead.removeAll { $0.config == a.config }
            s.ahead.append(a)
            if s.ahead.count > 6 { s.ahead.removeFirst() }
        case .analysisFailed(let cfg, let msg, let gen):
            guard gen == s.generation, cfg == s.config else { return [] }
            s.message = Message(text: msg, isError: true)
            if let a = s.analysis, s.undoStack.last?.after == cfg {
                s.undoStack.removeLast()
                s.config = a.config
                s.generation += 1
            }
        case .whatIf(let cfg, let values):
            guard cfg == s.config else { return [] }
            if s.whatIfConfig != cfg {
                s.whatIf = [:]
                s.whatIfConfig = cfg
            }
            for (f, v) in values { s.whatIf[f] = v }
            if s.partition.sort == .whatIf { rebuildPartition(&s) }
        case .frontier(let key, let points):
            guard key == s.sweep.frontierKey else { return [] }
            s.sweep.frontier = points
            s.sweep.frontierSelected = min(s.sweep.frontierSelected, max(0, points.count - 1))
        case .sweepPoint(let cfg, let gammas, let i, let p):
            guard cfg == s.sweep.key, gammas == s.sweep.gammas, i < s.sweep.points.count else { return [] }
            s.sweep.points[i] = p
        case .exported(let m):
            s.message = Message(text: m, isError: false)
            if let saved = s.pendingSave { s.savedConfig = saved }
            s.pendingSave = nil
        case .exportFailed(let m):
            s.pendingSave = nil
            s.message = Message(text: m, isError: true)
        }
        return []
    }

    /// Shows an analysis of the current configuration: rebuilds the lists, keeping each
    /// cursor on the same function, cluster or step where it still exists.
    static func install(_ s: inout ExplorerState, _ a: Analysis) {
        let oldCluster: Int32? = {
            guard let old = s.analysis, s.clusters.cursor.row < s.clusters.rows.count else { return nil }
            return old.clustering.clusterChains[Int(s.clusters.rows[s.clusters.cursor.row])].first
        }()
        let previous = s.analysis
        s.analysis = a
        if let g = a.core.unmatchedGlobs.last(where: { previous?.core.unmatchedGlobs.contains($0) != true }) {
            s.message = Message(text: "core glob '\(g)' matches no function", isError: true)
        }
        // Orders by heat, size or name over all functions do not depend on the clustering.
        let independent = [PartitionSort.heat, .size, .name].contains(s.partition.sort) && s.partition.show == .all
        if !independent || s.partition.rows.isEmpty { rebuildPartition(&s) }
        rebuildClusters(&s)
        if let low = oldCluster {
            let k = a.clustering.chainCluster[Int(low)]
            if k >= 0, let i = s.clusters.rows.firstIndex(of: k) { s.clusters.cursor.row = i }
        }
        clampAll(&s)
        // The steps (every coalescing event, 53,000 on a kernel) only when on screen;
        // `show` lists them when the view opens.
        if s.view == .steps { rebuildSteps(&s) }
        if s.whatIfConfig != a.config {
            s.whatIf = [:]
            s.whatIfConfig = a.config
            s.whatIfRequested = []
        }
    }

    static func clampAll(_ s: inout ExplorerState) {
        s.partition.cursor.clamp(count: s.partition.rows.count, page: Lists.area(s, .partition).rows)
        s.clusters.cursor.clamp(count: s.clusters.rows.count, page: Lists.area(s, .clusters).rows)
        for v in [ViewID.partition, .clusters] {
            var d = Lists.drillStack(s, v)
            for i in d.indices {
                var c = d[i].cursor
                c.clamp(count: Lists.rows(of: d[i], s).count, page: Lists.area(s, .drill(v)).rows)
                d[i].cursor = c
            }
            Lists.setDrillStack(&s, v, d)
        }
        if s.view == .graph { s.graph.cursor.clamp(count: Lists.graphNeighbours(s).count, page: Lists.area(s, .graph).rows) }
        s.steps.cursor.clamp(count: s.steps.rows.count, page: Lists.area(s, .steps).rows)
        s.configCursor.clamp(count: Lists.configRows(s).count, page: Lists.area(s, .config).rows)
    }

    // MARK: - Row orders

    static func rebuildPartition(_ s: inout ExplorerState) {
        let m = s.model
        let selected: Int32? = s.partition.cursor.row < s.partition.rows.count ? s.partition.rows[s.partition.cursor.row] : nil
        let filter = s.partition.filter.lowercased()
        let glob = Glob.hasWildcards(filter)
        var rows: [Int32] = []
        rows.reserveCapacity(m.functionCount)
        let a = s.analysis
        for f in 0..<m.functionCount {
            if !filter.isEmpty {
                let n = m.lowerNames[f]
                if glob ? !Glob.matches(filter, n) : !n.contains(filter) { continue }
            }
            if s.partition.show != .all, let a {
                let k = a.placement.kind(f)
                switch s.partition.show {
                case .core: if k != .core { continue }
                case .hot: if k != .hot && k != .oversize { continue }
                case .cold: if k != .cold && k != .mixed { continue }
                case .all: break
                }
            }
            rows.append(Int32(f))
        }
        let desc = s.partition.descending
        func order<T: Comparable>(_ key: (Int) -> T) {
            rows.sort { x, y in
                let kx = key(Int(x)), ky = key(Int(y))
                if kx != ky { return desc ? kx > ky : kx < ky }
                return m.lowerNames[Int(x)] != m.lowerNames[Int(y)] ? m.lowerNames[Int(x)] < m.lowerNames[Int(y)] : x < y
            }
        }
        switch s.partition.sort {
        case .heat: order { m.functionHeat[$0] }
        case .size: order { m.program.functions[$0].size }
        case .name:
            rows.sort { x, y in
                let nx = m.lowerNames[Int(x)], ny = m.lowerNames[Int(y)]
                if nx != ny { return desc ? nx > ny : nx < ny }
                return x < y
            }
        case .loads: order { a?.functionLoads[$0] ?? 0 }
        case .whatIf:
            // Known values first in order; unknown and core after them.
            let known = rows.filter { s.whatIf[$0] != nil }
            let unknown = rows.filter { s.whatIf[$0] == nil }
            rows = known.sorted { x, y in
                let vx = s.whatIf[x]!.perKB, vy = s.whatIf[y]!.perKB
                if vx != vy { return desc ? vx > vy : vx < vy }
                return x < y
            } + unknown.sorted { m.functionHeat[Int($0)] != m.functionHeat[Int($1)] ? m.functionHeat[Int($0)] > m.functionHeat[Int($1)] : $0 < $1 }
        }
        s.partition.rows = rows
        if let f = selected, let i = rows.firstIndex(of: f) { s.partition.cursor.row = i }
        s.partition.cursor.clamp(count: rows.count, page: Lists.area(s, .partition).rows)
    }

    static func rebuildClusters(_ s: inout ExplorerState) {
        guard let a = s.analysis else { s.clusters.rows = []; return }
        let selected: Int32? = s.clusters.cursor.row < s.clusters.rows.count ? s.clusters.rows[s.clusters.cursor.row] : nil
        var rows = (0..<Int32(a.clustering.clusterCount)).map { $0 }
        let desc = s.clusters.descending
        func order<T: Comparable>(_ key: (Int) -> T) {
            rows.sort { x, y in
                let kx = key(Int(x)), ky = key(Int(y))
                if kx != ky { return desc ? kx > ky : kx < ky }
                return x < y
            }
        }
        switch s.clusters.sort {
        case .id: if desc { rows.reverse() }
        case .size: order { a.clustering.clusterSize[$0] }
        case .loads: order { a.clusterLoads[$0] }
        case .cost: order { a.clusterSeconds[$0] }
        }
        s.clusters.rows = rows
        if let k = selected, let i = rows.firstIndex(of: k) { s.clusters.cursor.row = i }
        s.clusters.cursor.clamp(count: rows.count, page: Lists.area(s, .clusters).rows)
    }

    static func rebuildSteps(_ s: inout ExplorerState) {
        guard let a = s.analysis else { s.steps.rows = []; return }
        let ev = a.events
        var rows: [Int32] = []
        rows.reserveCapacity(ev.count)
        for (i, e) in ev.enumerated() {
            let keep: Bool
            switch s.steps.show {
            case .all: keep = true
            case .merges: keep = e.kind != .refused
            case .core: keep = e.kind == .absorbedIntoCore || e.kind == .defragmentedIntoCore
            case .refusals: keep = e.kind == .refused
            case .defragmentation: keep = e.kind == .defragmented || e.kind == .defragmentedIntoCore
            }
            if keep { rows.append(Int32(i)) }
        }
        s.steps.rows = rows
        s.steps.cursor.clamp(count: rows.count, page: Lists.area(s, .steps).rows)
    }

    // MARK: - Follow-ups after every input

    static func followUps(_ s: inout ExplorerState) -> [Effect] {
        var fx: [Effect] = []
        updateFocus(&s)
        if s.view == .graph { syncGraph(&s) }
        // What-if values for what the user looks at (or everything when sorting by them).
        if let a = s.current {
            if s.whatIfConfig != a.config {
                s.whatIf = [:]
                s.whatIfConfig = a.config
                s.whatIfRequested = []
            }
            var want: [Int32] = []
            if s.view == .partition && s.partition.drill.isEmpty {
                let (_, rows) = Lists.area(s, .partition)
                let top = s.partition.cursor.top
                for i in top..<min(s.partition.rows.count, top + rows) {
                    let f = s.partition.rows[i]
                    if wantsWhatIf(s, a, f) { want.append(f) }
                }
                if s.partition.sort == .whatIf {
                    // Every function that ran, hottest first (a function that never ran
                    // saves no load by being pinned; it is estimated when it is shown).
                    let visible = Set(want)
                    let rest = (0..<Int32(s.model.functionCount)).filter { s.model.functionHeat[Int($0)] > 0 && wantsWhatIf(s, a, $0) && !visible.contains($0) }
                    want += rest.sorted { s.model.functionHeat[Int($0)] != s.model.functionHeat[Int($1)] ? s.model.functionHeat[Int($0)] > s.model.functionHeat[Int($1)] : $0 < $1 }
                }
            }
            if !want.isEmpty {
                s.whatIfRequested.formUnion(want)
                fx.append(.whatIf(base: a, functions: want, generation: s.generation))
            }
        }
        // The edits likely next, worked out ahead while the user looks at this one: γ a
        // point further the way it last went, then back, then pinning (or unpinning) the
        // function under the cursor. Figure 2 only: the affinity layout takes seconds on a
        // kernel and cannot be stopped part way, so an edit would wait behind it.
        if s.current != nil && s.prompt == nil && s.config.method == .figure2 {
            var want = [gammaStep(s.config, up: s.gammaDirection >= 0), gammaStep(s.config, up: s.gammaDirection < 0)]
            if let f = pinTarget(s), case .edit(let c, _) = pinEdit(s, f) { want.append(c) }
            want = want.filter { $0 != s.config && (try? $0.validate(source: "")) != nil }
            if want != s.aheadKey {
                s.aheadKey = want
                let missing = want.filter { c in !s.recent.contains { $0.config == c } && !s.ahead.contains { $0.config == c } }
                if !missing.isEmpty { fx.append(.analyseAhead(missing, shown: s.config)) }
            }
        }
        // The sweep, when it is shown and out of date.
        if s.view == .sweep {
            var key = s.config
            key.gamma = 0
            let gammas = sweepGammas(s.config.gamma, coreBase: s.analysis?.clustering.coreBaseBytes ?? 0, bufferSize: s.config.bufferSize)
            if s.sweep.key != key || s.sweep.gammas != gammas {
                let keep = s.sweep.key == key ? s.sweep.selected : nil
                s.sweep.key = key
                s.sweep.gammas = gammas
                s.sweep.points = Array(repeating: nil, count: gammas.count)
                let near = gammas.indices.min { abs(gammas[$0] - s.config.gamma) < abs(gammas[$1] - s.config.gamma) } ?? 0
                s.sweep.selected = min(keep ?? near, gammas.count - 1)
                fx.append(.sweep(key, gammas: gammas, generation: s.generation))
            }
        }
        return fx
    }

    /// What the frontier depends on: the configuration less what the optimiser chooses.
    static func frontierKey(_ c: Config) -> Config {
        var k = c
        k.method = .affinity; k.residentBudget = 0; k.bufferSize = 2048; k.buffers = 1; k.gamma = 0
        return k
    }

    static func wantsWhatIf(_ s: ExplorerState, _ a: Analysis, _ f: Int32) -> Bool {
        a.placement.kind(Int(f)) != .core && a.placement.kind(Int(f)) != .none && s.whatIf[f] == nil && !s.whatIfRequested.contains(f)
    }

    /// γ values of the sweep: from 0 to at least 20%, and on past the current γ and past
    /// the γ at which core's own limit reaches the buffer size (below it, Figure 2's
    /// max(core limit, BufSz) rule lets core grow to BufSz whatever γ says), at most 25
    /// points at a round step.
    static func sweepGammas(_ gamma: Double, coreBase: Int, bufferSize: Int) -> [Double] {
        var want = max(20, gamma * 1.5)
        if coreBase > 0 && bufferSize > coreBase {
            want = max(want, min(200, (Double(bufferSize) / Double(coreBase) - 1) * 150))
        }
        let steps: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
        let step = steps.first { want / $0 <= 25 } ?? (want / 25).rounded(.up)
        let hi = (want / step).rounded(.up) * step
        return stride(from: 0.0, through: hi, by: step).map { $0 }
    }

    static func updateFocus(_ s: inout ExplorerState) {
        guard let a = s.analysis else { return }
        switch Lists.active(s) {
        case .partition:
            guard s.partition.cursor.row < s.partition.rows.count else { return }
            let f = Int(s.partition.rows[s.partition.cursor.row])
            if let k = a.placement[f].clusters.first { s.focus = Lists.ref(k, a) } else { s.focus = .resident }
        case .clusters:
            guard s.clusters.cursor.row < s.clusters.rows.count else { return }
            s.focus = Lists.ref(s.clusters.rows[s.clusters.cursor.row], a)
        case .steps:
            guard s.steps.cursor.row < s.steps.rows.count else { return }
            let e = a.events[Int(s.steps.rows[s.steps.cursor.row])]
            s.focus = e.a < 0 ? .resident : .cluster(lowestChain: e.a)
        case .graph:
            s.focus = s.graph.center
        default:
            break
        }
    }

    /// Centres the graph on the latest selection made elsewhere.
    static func syncGraph(_ s: inout ExplorerState) {
        if s.graph.center == nil { s.graph.center = s.focus ?? .resident; s.graph.syncedFocus = s.focus }
        if let f = s.focus, f != s.graph.syncedFocus {
            s.graph.center = f
            s.graph.path = []
            s.graph.cursor = ListCursor()
            s.graph.syncedFocus = f
        }
        s.graph.cursor.clamp(count: Lists.graphNeighbours(s).count, page: Lists.area(s, .graph).rows)
    }
}

/// "2048", "4K", "1M": sizes as the prompts take them.
enum SizeParser {
    static func parse(_ s: String) -> Int? {
        var t = s.trimmingCharacters(in: .whitespaces).uppercased()
        var mult = 1
        if t.hasSuffix("KB") || t.hasSuffix("KIB") { t = String(t.dropLast(t.hasSuffix("KB") ? 2 : 3)); mult = 1024 }
        else if t.hasSuffix("K") { t.removeLast(); mult = 1024 }
        else if t.hasSuffix("MB") { t.removeLast(2); mult = 1 << 20 }
        else if t.hasSuffix("M") { t.removeLast(); mult = 1 << 20 }
        else if t.hasSuffix("B") { t.removeLast() }
        guard let v = Int(t.trimmingCharacters(in: .whitespaces)) else { return nil }
        let (r, o) = v.multipliedReportingOverflow(by: mult)
        return o ? nil : r
    }
}

extension Describe {
    /// 130.9, 2, 0.25: a number without trailing zeros.
    static func number(_ d: Double) -> String {
        if d == d.rounded() && abs(d) < 1e15 { return String(Int(d)) }
        var s = String(format: "%.3f", d)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}
