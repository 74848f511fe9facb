import Foundation
import OvlCore

/// Runs the explorer without a terminal: every input goes through the reducer and every
/// effect runs at once on the calling thread, so after `send` the state is settled.
/// What tests and benchmarks use; the terminal front end uses `ExplorerRuntime`.
public final class ExplorerDriver {
    public let engine: ExplorerEngine
    public private(set) var state: ExplorerState
    /// Paths written by exports, in order.
    public private(set) var exports: [String] = []
    public var glyphs: Glyphs
    /// When set, what-if, sweep and work-ahead wait for `settle()`, as they would wait on
    /// the terminal front end's workers while the screen is redrawn (benchmarks use this
    /// to time the redraw alone).
    public var defersBackgroundWork = false
    /// Whether the work ahead of the user (`Effect.analyseAhead`) runs; off by default, so
    /// that a test's every key costs one analysis, as it did before that work existed.
    public var runsAhead = false
    private var deferred: [Effect] = []

    public init(engine: ExplorerEngine, config: Config? = nil, width: Int = 120, height: Int = 40, glyphs: Glyphs = .unicode,
                defersBackgroundWork: Bool = false, runsAhead: Bool = false) {
        self.engine = engine
        self.glyphs = glyphs
        self.defersBackgroundWork = defersBackgroundWork
        self.runsAhead = runsAhead
        let (s, fx) = Explorer.start(model: engine.model, config: config ?? engine.session.config, width: width, height: height)
        state = s
        run(fx)
    }

    /// One input, then everything it causes.
    public func send(_ input: Input) {
        let (s, fx) = Explorer.handle(state, input)
        state = s
        run(fx)
    }

    public func press(_ keys: Key...) { for k in keys { send(.key(k)) } }

    /// Keys in `Key.script` notation: `"jj<Space>+<Enter>"`.
    public func type(_ script: String) { for k in Key.script(script) { send(.key(k)) } }

    public func resize(width: Int, height: Int) { send(.resize(width: width, height: height)) }

    public func render() -> Grid { Renderer.render(state, glyphs: glyphs) }

    public var screen: String { render().text }

    /// Drops the background work held back by `defersBackgroundWork`.
    public func discardDeferred() { deferred = [] }

    /// Runs the background work held back by `defersBackgroundWork` (only the work ahead
    /// of the user when `aheadOnly`; the rest is dropped).
    public func settle(aheadOnly: Bool = false) {
        let work = aheadOnly ? deferred.filter { if case .analyseAhead = $0 { return true } else { return false } } : deferred
        deferred = []
        let keep = defersBackgroundWork
        defersBackgroundWork = false
        run(work)
        defersBackgroundWork = keep
    }

    func run(_ effects: [Effect]) {
        var queue = effects
        while !queue.isEmpty {
            let e = queue.removeFirst()
            if case .analyseAhead = e, !runsAhead { continue }
            if defersBackgroundWork {
                switch e {
                case .whatIf, .sweep, .analyseAhead:
                    deferred.append(e)
                    continue
                default: break
                }
            }
            if case .export(_, let path, _) = e { exports.append(path) }
            for ev in engine.run(e) {
                let (s, fx) = Explorer.handle(state, .engine(ev))
                state = s
                queue += fx
            }
        }
    }
}

/// Runs effects on worker threads for the terminal front end, and hands back what they
/// report. Two workers: one for what the user waits for (analyses, exports, the sweep and
/// the frontier, which set the session's configuration) and one for the what-if column,
/// which only reads the session, so an edit never waits behind an estimate (on a kernel
/// one takes as long as an analysis). Analyses are latest-wins: one queued behind a
/// running one replaces any older one still waiting; what-if work of an older generation
/// and sweeps of another configuration are dropped between items, so stale runs never
/// delay the one the user is waiting for. The work ahead of the user runs last on the
/// first worker and stops as soon as anything else is queued there; the what-if worker
/// waits between estimates while the first worker runs an analysis.
public final class ExplorerRuntime: @unchecked Sendable {
    let engine: ExplorerEngine
    private let lock = NSLock()
    /// Per worker (0: the user's work, 1: what-if estimates): queued jobs, whether it runs.
    private var jobs: [[Effect]] = [[], []]
    private var running = [false, false]
    private var events: [EngineEvent] = []
    private var latestGeneration = 0
    private var currentSweep: (Config, [Double])? = nil
    /// The analysis ahead of the user under way on the first worker, and its stop.
    private var aheadRunning: (config: Config, stop: StopSignal)?
    /// The last analysis worked out ahead: an edit that asked for it while it ran takes it.
    private var lastAhead: Analysis?

    /// Called (on a worker thread) after each report, so the input loop can stop waiting
    /// for a key and take it at once.
    let onReport: (@Sendable () -> Void)?

    public init(engine: ExplorerEngine, onReport: (@Sendable () -> Void)? = nil) {
        self.engine = engine
        self.onReport = onReport
    }

    /// Queues effects. `.redraw` is the front end's own business and is ignored here.
    public func submit(_ effects: [Effect]) {
        guard !effects.isEmpty else { return }
        lock.lock()
        for e in effects {
            // Work the user waits for stops the work ahead at once, except an analysis of
            // the very configuration being worked out ahead (it takes that result).
            if let (cfg, stop) = aheadRunning {
                switch e {
                case .analyse(let want, _, _) where want == cfg: break
                case .analyseAhead(let want, _) where want.contains(cfg): break
                case .whatIf, .redraw: break
                default: stop.raise()
                }
            }
            switch e {
            case .analyseAhead:
                jobs[0].removeAll { if case .analyseAhead = $0 { return true } else { return false } }
                jobs[0].append(e)
            case .analyse(_, let gen, _):
                latestGeneration = max(latestGeneration, gen)
                jobs[0].removeAll { if case .analyse = $0 { return true } else { return false } }
                jobs[0].insert(e, at: 0)
            case .whatIf(_, _, let gen):
                latestGeneration = max(latestGeneration, gen)
                jobs[1].append(e)
            case .sweep(let cfg, let gammas, _):
                currentSweep = (cfg, gammas)
                jobs[0].append(e)
            case .frontier:
                jobs[0].append(e)
            case .export:
                // Before the sweep and the frontier: the user is waiting for the file.
                let at = jobs[0].firstIndex { if case .analyse = $0 { return false } else { return true } } ?? jobs[0].count
                jobs[0].insert(e, at: at)
            case .redraw:
                break
            }
        }
        var start: [Int] = []
        for w in 0..<2 where !running[w] && !jobs[w].isEmpty {
            running[w] = true
            start.append(w)
        }
        lock.unlock()
        // A thread of its own for each burst of work, not a dispatch queue: the shared
        // pool can be busy with blocking work (the tests run many processes at once) and
        // the user's latest edit must never wait for it.
        for w in start {
            let t = Thread { self.drain(w) }
            t.name = w == 0 ? "ovl.explorer.engine" : "ovl.explorer.whatif"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    /// Whether work is queued or running.
    public var isBusy: Bool {
        lock.lock(); defer { lock.unlock() }
        return running[0] || running[1]
    }

    /// Events reported since the last call.
    public func takeEvents() -> [EngineEvent] {
        lock.lock(); defer { lock.unlock() }
        let out = events
        events = []
        return out
    }

    private func post(_ e: [EngineEvent]) {
        guard !e.isEmpty else { return }
        lock.lock()
        events += e
        lock.unlock()
        onReport?()
    }

    /// Whether the first worker runs an analysis (an edit's, or one ahead of the user).
    private var analysing = false

    /// Between two what-if estimates: waits while the first worker runs an analysis, the
    /// one the user waits for or one the next edit will want. Both workers would share
    /// the two cores (a replay splits over both), and the estimates are many and can wait.
    private func giveWayToAnalyses(_ gen: Int) {
        while true {
            lock.lock()
            let busy = analysing || aheadRunning != nil
            lock.unlock()
            if !busy || stale(gen) { return }
            usleep(1_000)
        }
    }

    private func stale(_ gen: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return gen < latestGeneration
    }

    private func staleSweep(_ cfg: Config, _ gammas: [Double]) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard let (c, g) = currentSweep else { return true }
        return c != cfg || g != gammas
    }

    private func drain(_ worker: Int) {
        while true {
            lock.lock()
            guard !jobs[worker].isEmpty else {
                running[worker] = false
                lock.unlock()
                return
            }
            let job = jobs[worker].removeFirst()
            lock.unlock()
            switch job {
            case .analyse(_, let gen, _) where stale(gen):
                continue
            case .analyse(let cfg, let gen, _):
                lock.lock()
                let ready = lastAhead.flatMap { $0.config == cfg ? $0 : nil }
                analysing = ready == nil
                lock.unlock()
                if let ready { post([.analysed(ready, generation: gen)]) } else { post(engine.run(job)) }
                lock.lock()
                analysing = false
                lock.unlock()
            case .analyseAhead(let configs, let shown):
                for cfg in configs {
                    // Anything queued meanwhile (an edit, or a newer request) goes first;
                    // the rest of this request is dropped.
                    lock.lock()
                    if !jobs[0].isEmpty {
                        lock.unlock()
                        break
                    }
                    let stop = StopSignal()
                    aheadRunning = (cfg, stop)
                    lock.unlock()
                    let a = engine.analyseAhead(cfg, shown: shown, stop: stop)
                    lock.lock()
                    aheadRunning = nil
                    if let a { lastAhead = a }
                    lock.unlock()
                    if let a { post([.analysedAhead(a)]) }
                }
            case .whatIf(let base, let fns, let gen):
                // In small batches, so values show up as they are computed.
                var batch: [(function: Int32, value: WhatIf)] = []
                var lastPost = DispatchTime.now()
                for f in fns {
                    if stale(gen) { break }
                    giveWayToAnalyses(gen)
                    batch.append((f, engine.whatIf(f, base: base)))
                    if DispatchTime.now().uptimeNanoseconds - lastPost.uptimeNanoseconds > 50_000_000 {
                        post([.whatIf(base.config, batch)])
                        batch = []
                        lastPost = DispatchTime.now()
                    }
                }
                post([.whatIf(base.config, batch)])
            case .sweep(let cfg, let gammas, _):
                for (i, g) in gammas.enumerated() {
                    if staleSweep(cfg, gammas) { break }
                    var c = cfg
                    c.gamma = g
                    if let p = try? engine.sweepPoint(c) { post([.sweepPoint(cfg, gammas: gammas, index: i, p)]) }
                }
            default:
                post(engine.run(job))
            }
        }
    }
}
