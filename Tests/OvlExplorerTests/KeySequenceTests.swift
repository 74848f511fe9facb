import Foundation
import OvlCore
@testable import OvlExplorer
import Testing

/// Scripted key sequences, as a user would type them, with the state they must leave.
@Suite("Key sequences")
struct KeySequenceTests {
    func selectedFunction(_ d: ExplorerDriver) -> String {
        let s = d.state
        return s.model.program.functions[Int(s.partition.rows[s.partition.cursor.row])].name
    }

    func index(of name: String, _ d: ExplorerDriver) -> Int32 {
        Int32(d.state.model.program.functionIndex(named: name)!)
    }

    @Test func spacePinsAFunctionAndUndoRedoRestore() throws {
        let d = try Fixture.driver()
        d.type("/cmp_id<Enter>")
        #expect(selectedFunction(d) == "cmp_id")
        let f = index(of: "cmp_id", d)
        let before = d.state.analysis!
        #expect(before.placement[Int(f)].kind == .cold)
        let predicted = d.state.whatIf[f]
        #expect(predicted != nil, "the what-if value of a visible function is computed")

        d.type("<Space>")
        #expect(d.state.config.coreFunctions == ["cmp_id"])
        let after = d.state.analysis!
        #expect(after.config == d.state.config)
        #expect(after.core.reason(f)?.origin == .configured)
        #expect(after.placement[Int(f)].kind == .core)
        #expect(d.state.message?.text == "pinned cmp_id")
        // The what-if column predicted exactly this change.
        #expect(Int64(before.totalLoads) - Int64(after.totalLoads) == predicted!.savedLoads)
        #expect(after.clustering.residentCodeBytes - before.clustering.residentCodeBytes == predicted!.addedBytes)

        d.type("<Space>")
        #expect(d.state.config.coreFunctions.isEmpty && d.state.config.coreExclude.isEmpty, "unpinning a pin removes it")
        d.type("u")
        #expect(d.state.config.coreFunctions == ["cmp_id"])
        d.type("uu")
        #expect(d.state.config == Fixture.config)
        #expect(d.state.analysis!.row == before.row, "undo comes back to the same clustering")
        d.type("<C-r>")
        #expect(d.state.config.coreFunctions == ["cmp_id"])
        #expect(d.state.undoStack.count == 1 && d.state.redoStack.count == 1)
    }

    /// A new edit after an undo starts a new history: what was undone can no longer be
    /// redone (redoing it would throw the new edit away silently).
    @Test func aNewEditAfterUndoClearsRedo() throws {
        let d = try Fixture.driver()
        let start = d.state.config
        d.type("+")
        let raised = d.state.config
        #expect(raised.gamma > start.gamma)
        d.type("u")
        #expect(d.state.config == start)
        #expect(d.state.redoStack.count == 1, "the undone γ step can be redone")
        d.type("B<C-u>4K<Enter>")
        #expect(d.state.config.bufferSize == 4096 && d.state.config.gamma == start.gamma)
        #expect(d.state.redoStack.isEmpty, "the new edit cleared redo")
        #expect(d.state.undoStack.count == 1)
        d.type("<C-r>")
        #expect(d.state.config.bufferSize == 4096 && d.state.config.gamma == start.gamma, "redo changes nothing")
        #expect(d.state.message?.text == "nothing to redo")
        #expect(d.state.analysis?.config == d.state.config)
        d.type("u")
        #expect(d.state.config == start, "undo goes back past the new edit to the start")
        #expect(d.state.undoStack.isEmpty && d.state.redoStack.count == 1)
    }

    @Test func unpinningAPresetFunctionAddsAnExclusion() throws {
        let d = try Fixture.driver()
        d.type("/__init_libc<Enter>")
        #expect(selectedFunction(d) == "__init_libc")
        let f = index(of: "__init_libc", d)
        #expect(d.state.analysis!.core.reason(f)?.origin == .configured)
        d.type("<Space>")
        #expect(d.state.config.coreExclude == ["__init_libc"])
        #expect(d.state.analysis!.core.contains(f) == false)
        d.type("<Space>")
        #expect(d.state.config.coreExclude.isEmpty && d.state.config.coreFunctions.isEmpty, "pinning drops the exclusion again")
        #expect(d.state.analysis!.core.contains(f))
    }

    @Test func requiredCoreCannotBeUnpinned() throws {
        let d = try Fixture.driver()
        d.type("/_start<Enter>")
        // `_start` is the entry point: core for correctness.
        while selectedFunction(d) != "_start" { d.type("n") }
        d.type("<Space>")
        #expect(d.state.config == Fixture.config)
        #expect(d.state.message?.isError == true)
        #expect(d.state.message?.text.contains("cannot be unpinned") == true)
    }

    @Test func gammaKeysAndTypedValue() throws {
        let d = try Fixture.driver()
        d.type("+")
        #expect(d.state.config.gamma == 5)
        #expect(d.state.analysis?.config.gamma == 5)
        #expect(d.state.analysis?.clustering.parameters.gamma == 5)
        d.type("=<C-u>12.5<Enter>")
        #expect(d.state.config.gamma == 12.5)
        d.type("-")
        #expect(d.state.config.gamma == 12, "- steps down to the next whole percent")
        d.type("=abc<Enter>")
        #expect(d.state.config.gamma == 12)
        #expect(d.state.message?.isError == true)
        d.type("=<C-u>0<Enter>-")
        #expect(d.state.config.gamma == 0)
        #expect(d.screen.contains("γ 0%"))
        #expect(d.state.undoStack.count == 4)
    }

    @Test func bufferAndPageModelEdits() throws {
        let d = try Fixture.driver()
        d.type("B<C-u>4K<Enter>")
        #expect(d.state.config.bufferSize == 4096)
        #expect(d.state.analysis!.clustering.clusterSize.allSatisfy { $0 <= 4096 })
        #expect(d.state.analysis!.clustering.clusterSize.contains { $0 > 2048 }, "clusters grow into the larger buffer")
        d.type("P<C-u>4096 50<Enter>")
        #expect(d.state.config.pageSize == 4096 && d.state.config.pageReadMicroseconds == 50)
        let cost = d.state.analysis!.phases.reduce(0) { $0 + $1.estimatedCostSeconds }
        let pages = d.state.analysis!.phases.reduce(0.0) { acc, p in
            acc + zip(p.clusterLoads, d.state.analysis!.clustering.clusterSize).reduce(0.0) { $0 + Double($1.0) * (Double($1.1) / 4096).rounded(.up) }
        }
        #expect(abs(cost - pages * 50 / 1e6) < 1e-9)
        d.type("B<C-u>0<Enter>")
        #expect(d.state.config.bufferSize == 4096, "a zero buffer is refused")
        #expect(d.state.message?.isError == true)
    }

    @Test func coreGlobsAddAndDelete() throws {
        let d = try Fixture.driver()
        d.type("Ccmp_*<Enter>")
        #expect(d.state.config.coreFunctions == ["cmp_*"])
        let core = d.state.analysis!.core
        for name in ["cmp_id", "cmp_name", "cmp_temp", "cmp_multi"] {
            #expect(core.contains(index(of: name, d)), "\(name) is matched by cmp_*")
        }
        d.type("Xcmp_temp<Enter>")
        #expect(d.state.config.coreExclude == ["cmp_temp"])
        #expect(!d.state.analysis!.core.contains(index(of: "cmp_temp", d)))
        // In the configuration view: delete the glob.
        d.type("6")
        let rows = Lists.configRows(d.state)
        let at = rows.firstIndex(of: .core(0))!
        d.type("g" + String(repeating: "j", count: at) + "D")
        #expect(d.state.config.coreFunctions.isEmpty)
        d.type("u")
        #expect(d.state.config.coreFunctions == ["cmp_*"])
    }

    @Test func configViewCyclesPresetAndToggles() throws {
        let d = try Fixture.driver()
        d.type("6")
        let rows = Lists.configRows(d.state)
        let preset = rows.firstIndex(of: .preset)!
        d.type(String(repeating: "j", count: preset) + "<Enter>")
        #expect(d.state.config.corePreset == .static)
        d.type("<Enter><Enter>")
        #expect(d.state.config.corePreset == .none)
        #expect(d.state.analysis!.core.reasons.values.allSatisfy { $0.origin == .required }, "without a preset only required functions are core")
        d.type("j<Enter>")
        #expect(d.state.config.defragmentIntoCore)
    }

    /// An edit records the coalescing events only while the steps view is on screen
    /// (they cost the coalescer 5% on a kernel); elsewhere the first look runs the same
    /// coalescing again for them. Both give the same events, and the steps list follows.
    @Test func eventsAreRecordedWhileTheStepsAreOnScreen() throws {
        let d = try Fixture.driver()
        d.type("+")
        let off = try #require(d.state.analysis)
        #expect(!off.clustering.parameters.recordEvents && off.clustering.events.isEmpty, "off the steps view an edit records none")
        d.type("4")
        #expect(d.state.view == .steps)
        #expect(d.state.steps.rows.count == off.events.count && !off.events.isEmpty, "opening the view lists the events found then")
        d.type("+")
        let on = try #require(d.state.analysis)
        #expect(on.config.gamma == off.config.gamma + 1)
        #expect(on.clustering.parameters.recordEvents && !on.clustering.events.isEmpty, "on the steps view the edit recorded them")
        #expect(d.state.steps.rows.count == on.clustering.events.count, "the list follows the edit")
        // The same configuration analysed without them finds the very same events.
        let later = try d.engine.analyse(on.config)
        #expect(later.clustering.events.isEmpty)
        #expect(later.events == on.clustering.events)
        #expect(later.liveAfter == on.liveAfter && later.coreAfter == on.coreAfter && later.eventCounts == on.eventCounts)
    }

    @Test func stepThroughCoalescing() throws {
        let d = try Fixture.driver()
        d.type("4")
        let events = d.state.analysis!.events
        #expect(!events.isEmpty)
        #expect(d.state.steps.cursor.row == 0)
        d.type("G")
        #expect(d.state.steps.cursor.row == events.count - 1)
        d.type("g")
        // Walk to the first refusal, then ] skips to the next merge.
        let firstRefused = events.firstIndex { $0.kind == .refused }!
        d.type(String(repeating: "j", count: firstRefused))
        #expect(events[d.state.steps.cursor.row].kind == .refused)
        d.type("]")
        let next = d.state.steps.cursor.row
        #expect(next > firstRefused)
        #expect(events[next].kind != .refused)
        #expect(events[(firstRefused + 1)..<next].allSatisfy { $0.kind == .refused })
        d.type("[")
        #expect(d.state.steps.cursor.row < firstRefused && events[d.state.steps.cursor.row].kind != .refused)
        // The explanation names the step.
        #expect(d.screen.contains("step \(d.state.steps.cursor.row + 1) of \(Describe.count(events.count))"))
        // Only refusals, then only core absorptions.
        d.type("vvv")
        #expect(d.state.steps.show == .refusals)
        #expect(d.state.steps.rows.allSatisfy { events[Int($0)].kind == .refused })
        d.type("v")
        #expect(d.state.steps.rows.allSatisfy { events[Int($0)].kind == .defragmented || events[Int($0)].kind == .defragmentedIntoCore })
        // The running totals end where the clustering ends.
        let a = d.state.analysis!
        #expect(Int(a.liveAfter.last!) == a.clustering.clusterCount)
        #expect(Int(a.coreAfter.last!) == a.clustering.residentCodeBytes)
    }

    @Test func drillInAndOut() throws {
        let d = try Fixture.driver()
        d.type("2<Enter>")
        guard case .chains(.cluster, _) = d.state.clusters.drill.last else { Issue.record("not in a cluster's chains"); return }
        d.type("<Enter>")
        guard case .blocks = d.state.clusters.drill.last else { Issue.record("not in a chain's blocks"); return }
        d.type("<Enter>")
        guard case .disassembly(let b, _) = d.state.clusters.drill.last else { Issue.record("not in a disassembly"); return }
        // Follow the block's branch (its last instruction).
        d.type("G<Enter>")
        guard case .disassembly(let b2, _) = d.state.clusters.drill.last, b2 != b else { Issue.record("the branch was not followed"); return }
        #expect(d.state.clusters.drill.count == 4)
        d.type("<BS>hq<Left>")
        #expect(d.state.clusters.drill.isEmpty)
        #expect(d.state.exitStatus == nil, "q backs out before it quits")
        d.type("q")
        #expect(d.state.exitStatus == 0)
    }

    @Test func searchAndFilter() throws {
        let d = try Fixture.driver()
        d.type("/printf<Enter>")
        let first = selectedFunction(d)
        #expect(first.contains("printf"))
        d.type("n")
        let second = selectedFunction(d)
        #expect(second.contains("printf") && second != first)
        d.type("N")
        #expect(selectedFunction(d) == first)
        d.type("/zzzz-nothing<Enter>")
        #expect(d.state.message?.text.contains("not found") == true)
        d.type("f*alloc*<Enter>")
        #expect(!d.state.partition.rows.isEmpty)
        #expect(d.state.partition.rows.allSatisfy { d.state.model.program.functions[Int($0)].name.lowercased().contains("alloc") })
        d.type("f<C-u><Enter>vvv")
        #expect(d.state.partition.show == .cold)
        #expect(d.state.partition.rows.allSatisfy { [.cold, .mixed].contains(d.state.analysis!.placement[Int($0)].kind) })
    }

    @Test func sortingKeepsTheSelection() throws {
        let d = try Fixture.driver()
        d.type("/merge_sort<Enter>")
        for _ in 0..<4 {
            d.type("s")
            #expect(selectedFunction(d) == "merge_sort")
        }
        #expect(d.state.partition.sort == .whatIf)
        // Sorting by what-if computes the value of every function that ran.
        let a = d.state.analysis!
        let eligible = (0..<Int32(d.state.model.functionCount)).filter {
            a.placement[Int($0)].kind != .core && a.placement[Int($0)].kind != .none && d.state.model.functionHeat[Int($0)] > 0
        }
        #expect(eligible.count > 20)
        #expect(eligible.allSatisfy { d.state.whatIf[$0] != nil })
        let values = d.state.partition.rows.compactMap { d.state.whatIf[$0]?.perKB }
        #expect(values == values.sorted(by: >))
        d.type("r")
        let reversed = d.state.partition.rows.compactMap { d.state.whatIf[$0]?.perKB }
        #expect(reversed == reversed.sorted())
    }

    @Test func graphMovesAlongEdges() throws {
        let d = try Fixture.driver()
        d.type("2j3")
        let a = d.state.analysis!
        #expect(d.state.graph.center == .cluster(lowestChain: a.clustering.clusterChains[1][0]), "the graph centres on the cluster selected")
        let nbs = Lists.graphNeighbours(d.state)
        #expect(!nbs.isEmpty)
        #expect(nbs.map(\.weight) == nbs.map(\.weight).sorted(by: >), "heaviest edge first")
        d.type("<Enter>")
        #expect(Lists.graphCenter(d.state) == nbs[0].node)
        #expect(d.state.graph.path.count == 1)
        d.type("<BS>")
        #expect(Lists.graphCenter(d.state) == 1)
        #expect(d.state.graph.path.isEmpty)
    }

    @Test func sweepMarksGammaAndSetsIt() throws {
        let d = try Fixture.driver()
        d.type("5")
        let sw = d.state.sweep
        #expect(sw.gammas.first == 0)
        #expect(sw.points.allSatisfy { $0 != nil })
        #expect(d.screen.contains("now 4%"))
        d.type("G<Enter>")
        #expect(d.state.config.gamma == sw.gammas.last!)
        let p = sw.points.last!!
        #expect(d.state.analysis!.row.totalMemory == p.totalMemory)
        #expect(d.state.analysis!.row.reductionPercent == p.reductionPercent)
    }

    @Test func mouseSelectsScrollsAndSwitchesViews() throws {
        let d = try Fixture.driver()
        let (top, _) = Lists.area(d.state, .partition)
        d.send(.mouse(.click, x: 5, y: top + 3))
        #expect(d.state.partition.cursor.row == 3)
        d.send(.mouse(.wheelDown, x: 5, y: top + 3))
        #expect(d.state.partition.cursor.top == 3)
        d.send(.mouse(.doubleClick, x: 5, y: top + 1))
        #expect(d.state.partition.drill.count == 1)
        let clusterTab = TabBar.ranges(width: 120).first { $0.0 == .clusters }!.1
        d.send(.mouse(.click, x: clusterTab.lowerBound + 2, y: Layout.headerLines))
        #expect(d.state.view == .clusters)
    }

    @Test func resizeKeepsTheCursorVisible() throws {
        let d = try Fixture.driver()
        d.type("G")
        let last = d.state.partition.rows.count - 1
        #expect(d.state.partition.cursor.row == last)
        d.resize(width: 80, height: 24)
        d.type("k")
        let c = d.state.partition.cursor
        let rows = Lists.area(d.state, .partition).rows
        #expect(c.row == last - 1 && c.row >= c.top && c.row < c.top + rows)
        #expect(d.render().height == 24)
    }

    @Test func viewKeys() throws {
        let d = try Fixture.driver()
        for (key, view) in [("2", ViewID.clusters), ("<Tab>", .graph), ("<S-Tab>", .clusters), ("6", .config), ("<Tab>", .partition), ("1", .partition)] {
            d.type(key)
            #expect(d.state.view == view)
        }
        d.type("?")
        #expect(d.state.overlay == .help(top: 0))
        d.type("j")
        #expect(d.state.overlay == .help(top: 1))
        d.type("q")
        #expect(d.state.overlay == nil && d.state.exitStatus == nil)
    }
}

/// The optimiser's frontier in the sweep view: `o` shows it, Enter adopts a point as an
/// ordinary edit (the analysis then equals what analyze reports for that configuration),
/// `u` goes back.
@Suite("Frontier")
struct FrontierKeyTests {
    @Test func enterAdoptsAFrontierPointAndUndoReturns() throws {
        let d = try Fixture.driver()
        let before = d.state.config
        d.type("5o")
        let front = try #require(d.state.sweep.frontier)
        #expect(front.count >= 2)
        #expect(d.screen.contains("Frontier"))
        #expect(d.screen.contains("vs pg"))
        d.type("j<Enter>")
        let p = front[1]
        #expect(d.state.config.method == .affinity)
        #expect(d.state.config.residentBudget == p.residentBudget && d.state.config.bufferSize == p.bufferSize && d.state.config.buffers == p.buffers)
        let a = try #require(d.state.analysis)
        #expect(a.config == d.state.config)
        #expect(a.row.totalMemory == p.totalMemory, "the explorer measures the adopted point as the optimiser did")
        #expect(a.totalLoads == p.phases.reduce(0) { $0 + $1.loads })
        d.type("u")
        #expect(d.state.config == before)
        d.type("o")
        #expect(!d.state.sweep.showFrontier)
        #expect(d.screen.contains("sweep"))
    }
}
