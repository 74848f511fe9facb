import COverlayRules
import CReplay
import Foundation

/// Table 2 for one phase: how often clusters were loaded and what that costs on flash.
public struct PhaseCost: Codable, Sendable, Equatable {
    public var phase: String
    /// True when replayed from a trace in execution order; false when estimated from edge
    /// weights, in which case `loads` is an upper bound.
    public var exact: Bool
    public var loads: UInt64
    public var bytesLoaded: UInt64
    public var estimatedCostSeconds: Double
    /// Loads and bytes loaded per cluster, by cluster id.
    public var clusterLoads: [UInt64]
    public var clusterBytesLoaded: [UInt64]
    /// Demand paging of the original layout at the same total memory.
    public var paging: PagingBaseline?
    /// Functions this phase ran that the training profiles never did (held-out phases).
    public var unseenFunctions: [String]?
}

/// The baseline the clustering must beat: the original layout paged on demand into as
/// many page frames as the clustered configuration's total memory holds, least recently
/// used replaced first.
public struct PagingBaseline: Codable, Sendable, Equatable {
    public var frames: Int
    public var pageSize: Int
    public var loads: UInt64
    public var bytesLoaded: UInt64
    public var estimatedCostSeconds: Double
}

/// Replays traces against clusterings. Built once per session: each phase's trace is
/// compacted to the sequence of chains entered (stretches outside the analysed code
/// dropped, repeats folded), so a new clustering costs one pass over that sequence.
public final class CostModel: @unchecked Sendable {
    public let session: Session
    private let basis: CostBasis

    /// Chains entered, per phase: outside stretches removed, consecutive repeats folded.
    /// Made on first use from the two-byte sequences when the replays use those.
    public var compact: [[Int32]] {
        compactLock.lock()
        defer { compactLock.unlock() }
        if let known = compactValue { return known }
        let c = basis.compact
        compactValue = c
        return c
    }
    private var compactValue: [[Int32]]?
    private let compactLock = NSLock()

    public init(session: Session) {
        self.session = session
        basis = session.costBasis
        for (p, pages) in zip(session.profiles, basis.pages) {
            if let pages { paging[pagingKey(p, pageSize: basis.pageSize)] = .listed(pages.sequence, pages.count) }
        }
    }

    /// Loads per cluster when phase `i`'s trace runs against `c` (`replay`).
    public func replay(phase i: Int, _ c: Clustering, buffers: Int) -> [UInt64] {
        replay(phases: [i], c, buffers: buffers, byChain: false)[0]
    }

    /// Loads per chain entered when phase `i`'s trace runs against `c` (`replayByChain`).
    public func replayByChain(phase i: Int, _ c: Clustering, buffers: Int) -> [UInt64] {
        replay(phases: [i], c, buffers: buffers, byChain: true)[0]
    }

    /// `replay(phase:)` (per cluster) or `replayByChain(phase:)` (`byChain`) of every phase
    /// in `phases` at once: their events shared out evenly among the cores, where phase by
    /// phase each trace was cut apart and the shorter ones left a core waiting.
    public func replay(phases: [Int], _ c: Clustering, buffers: Int, byChain: Bool, scan: ReplayScan = .best) -> [[UInt64]] {
        let slots = byChain ? c.chainCluster.count : c.clusterCount
        if let n = basis.narrow {
            return CostModel.replay(phases.map { n[$0] }, chainCluster: c.chainCluster, buffers: buffers, slots: slots, byChain: byChain, scan: scan)
        }
        let wide = basis.wide
        return CostModel.replay(phases.map { wide[$0] }, chainCluster: c.chainCluster, buffers: buffers, slots: slots, byChain: byChain, scan: scan)
    }

    /// `compact(_:)` in two bytes an event (every chain number below 65,536).
    static func compactNarrow(_ p: Profile) -> [UInt16] {
        compacted(p) { UInt16(truncatingIfNeeded: $0) }
    }

    public static func compact(_ p: Profile) -> [Int32] {
        compacted(p) { $0 }
    }

    /// The chains entered, in order, once for each entry (stretches outside dropped,
    /// repeats across them folded), read from the runs as kept: a loop's runs
    /// (`Profile.loopEntry`) are the entries before its mark, again. A plain loop here:
    /// through `forEachChainRun`, the output and the last chain were captured by its
    /// closure and lived in memory.
    @inline(__always)
    private static func compacted<T>(_ p: Profile, _ event: (Int32) -> T) -> [T] {
        var out: [T] = []
        out.reserveCapacity(p.encodedChainRuns.count)
        var last: Int32 = -1
        p.encodedChainRuns.withUnsafeBufferPointer { r in
            for i in 0..<r.count {
                let c = r[i]
                if c < Profile.loopLimit {
                    let (k, q) = Profile.loopParts(c)
                    for _ in 0..<k { for j in (i - q)..<i where r[j] >= 0 && r[j] != last { out.append(event(r[j])); last = r[j] } }
                } else if c >= 0 && c != last {
                    out.append(event(c))
                    last = c
                }
            }
        }
        return out
    }

    /// Loads per cluster when `sequence` (chains) runs against `chainCluster`, following
    /// the overlay manager's rules (`ovl_rules.h`) with `buffers` code buffers.
    public static func replay(_ sequence: [Int32], chainCluster: [Int32], clusters: Int, buffers: Int, parts: Int? = nil,
                              scan: ReplayScan = .best) -> [UInt64] {
        replay(sequence, chainCluster: chainCluster, buffers: buffers, slots: clusters, parts: parts, byChain: false, scan: scan)
    }

    /// `replay` with each load charged to the chain entered (the explorer's what-if).
    public static func replayByChain(_ sequence: [Int32], chainCluster: [Int32], chains: Int, buffers: Int, parts: Int? = nil,
                                     scan: ReplayScan = .best) -> [UInt64] {
        replay(sequence, chainCluster: chainCluster, buffers: buffers, slots: chains, parts: parts, byChain: true, scan: scan)
    }

    /// The replay loop: a load is charged to the chain entered (`byChain`) or its cluster.
    /// Chains are two or four bytes (`compactNarrow`, `compact`).
    static func replay<Chain: FixedWidthInteger & SendableMetatype>(_ sequence: [Chain], chainCluster: [Int32], buffers: Int, slots: Int, parts: Int? = nil,
                                                 byChain: Bool, scan: ReplayScan = .best) -> [UInt64] {
        replay([sequence], chainCluster: chainCluster, buffers: buffers, slots: slots, parts: parts, byChain: byChain, scan: scan)[0]
    }

    /// `replay` of several traces against one clustering, each trace from empty buffers.
    /// Their events are cut into `parts` stretches of equal length replayed at once on
    /// separate cores (by default one per core, for a million events or more), a stretch
    /// taking the end of one trace and the start of the next where it spans two: the
    /// buffers' contents at the start of a stretch are the `buffers` clusters entered
    /// most recently before it in its trace, in that order of recency, which is all the
    /// rules look at. The counts equal one replay of each trace from its start.
    static func replay<Chain: FixedWidthInteger & SendableMetatype>(_ sequences: [[Chain]], chainCluster: [Int32], buffers: Int, slots: Int,
                                                                   parts: Int? = nil, byChain: Bool, scan: ReplayScan = .best) -> [[UInt64]] {
        precondition(Chain.bitWidth == 16 || Chain.bitWidth == 32, "chains are kept in two or four bytes")
        let total = sequences.reduce(0) { $0 + $1.count }
        let p = max(1, min(parts ?? (total >= 1 << 20 ? min(Cores.active, 8) : 1), max(total, 1)))
        // The stretches: part i takes events [total * i / p, total * (i + 1) / p) of the
        // traces laid end to end, one piece per trace it touches.
        var pieces: [[ReplayPiece]] = []
        var start = 0
        var starts: [Int] = []
        for q in sequences { starts.append(start); start += q.count }
        for i in 0..<p {
            let lo = total * i / p, hi = total * (i + 1) / p
            var part: [ReplayPiece] = []
            for t in sequences.indices {
                let from = max(lo, starts[t]) - starts[t], to = min(hi, starts[t] + sequences[t].count) - starts[t]
                if from < to { part.append(ReplayPiece(trace: t, range: from..<to)) }
            }
            pieces.append(part)
        }
        let results: [[(trace: Int, loads: [UInt64])]]
        if p == 1 {
            results = [replayPieces(pieces[0], sequences, chainCluster: chainCluster, buffers: buffers, slots: slots, byChain: byChain, scan: scan)]
        } else {
            // Each stretch reads the shared arrays and writes its own result.
            let out = ReplayStretches(sequences, chainCluster, pieces: pieces)
            DispatchQueue.concurrentPerform(iterations: p) { i in
                out.set(i, replayPieces(out.pieces[i], out.sequences, chainCluster: out.chainCluster, buffers: buffers, slots: slots,
                                        byChain: byChain, scan: scan))
            }
            results = out.results
        }
        var loads: [[UInt64]?] = Array(repeating: nil, count: sequences.count)
        for part in results {
            for (t, r) in part {
                if loads[t] == nil { loads[t] = r; continue }
                loads[t]!.withUnsafeMutableBufferPointer { sum in
                    for i in 0..<slots { sum[i] &+= r[i] }
                }
            }
        }
        return loads.map { $0 ?? [UInt64](repeating: 0, count: slots) }
    }

    /// The entries among `sequence` (`ovl_replay.h`): the chains of the events that enter
    /// a cluster other than the last one entered (`last`, which it leaves at the last).
    static func scanEntries<Chain: FixedWidthInteger>(_ sequence: [Chain], map: [Int32], last: inout Int32, scan: ReplayScan) -> [Int32] {
        precondition(Chain.bitWidth == 16 || Chain.bitWidth == 32, "chains are kept in two or four bytes")
        var out = [Int32](repeating: 0, count: sequence.count + 16)
        let count = sequence.withUnsafeBytes { raw in
            map.withUnsafeBufferPointer { m in
                out.withUnsafeMutableBufferPointer { o in
                    Chain.bitWidth == 16
                        ? ovl_replay_entries_u16(scan.rawValue, raw.baseAddress?.assumingMemoryBound(to: UInt16.self), sequence.count, m.baseAddress, &last, o.baseAddress)
                        : ovl_replay_entries_i32(scan.rawValue, raw.baseAddress?.assumingMemoryBound(to: Int32.self), sequence.count, m.baseAddress, &last, o.baseAddress)
                }
            }
        }
        return Array(out[..<count])
    }

    /// One stretch's pieces, each replayed from the state its trace had there.
    static func replayPieces<Chain: FixedWidthInteger>(_ part: [ReplayPiece], _ sequences: [[Chain]], chainCluster: [Int32], buffers: Int, slots: Int,
                                                      byChain: Bool, scan: ReplayScan) -> [(trace: Int, loads: [UInt64])] {
        part.map { piece in
            let loads = sequences[piece.trace].withUnsafeBufferPointer { seq in
                chainCluster.withUnsafeBufferPointer { map in
                    replayStretch(seq, piece.range, map: map, buffers: buffers, slots: slots, byChain: byChain, scan: scan)
                }
            }
            return (piece.trace, loads)
        }
    }

    /// Events scanned at a time: their entries (`ovl_replay.h`) fit in 64 KB.
    static let scanChunk = 16_384

    /// Replays `range` of the sequence, starting from the buffers as the events before it
    /// left them. The scan (`ovl_replay_entries_u16`, `_i32`) finds the events that enter
    /// overlay code, a chunk at a time; only those reach the rules: re-entering the
    /// cluster entered last is rule 1's cheapest case, and resident code neither loads
    /// nor evicts.
    static func replayStretch<Chain: FixedWidthInteger>(_ seq: UnsafeBufferPointer<Chain>, _ range: Range<Int>, map: UnsafeBufferPointer<Int32>,
                                                        buffers: Int, slots: Int, byChain: Bool, scan: ReplayScan = .best) -> [UInt64] {
        var loads = [UInt64](repeating: 0, count: slots)
        var state = ovl_buffer_state()
        ovl_rules_init(&state, Int32(buffers))
        var last: Int32 = -1
        if range.lowerBound > 0 {
            // The clusters entered most recently before the stretch, most recent first.
            var recent: [Int32] = []
            var j = range.lowerBound - 1
            while j >= 0 && recent.count < buffers {
                let k = map[Int(truncatingIfNeeded: seq[j])]
                if k >= 0 && !recent.contains(k) { recent.append(k) }
                j -= 1
            }
            for k in recent.reversed() { _ = ovl_rules_enter(&state, k) }
            last = recent.first ?? -1
        }
        guard !range.isEmpty, let base = seq.baseAddress, let clusters = map.baseAddress else { return loads }
        let entries = UnsafeMutablePointer<Int32>.allocate(capacity: scanChunk + 16)
        defer { entries.deallocate() }
        let raw = UnsafeRawPointer(base)
        loads.withUnsafeMutableBufferPointer { out in
            var i = range.lowerBound
            while i < range.upperBound {
                let m = min(scanChunk, range.upperBound - i)
                let count = Chain.bitWidth == 16
                    ? ovl_replay_entries_u16(scan.rawValue, raw.assumingMemoryBound(to: UInt16.self) + i, m, clusters, &last, entries)
                    : ovl_replay_entries_i32(scan.rawValue, raw.assumingMemoryBound(to: Int32.self) + i, m, clusters, &last, entries)
                if buffers == 1 {
                    // One buffer: it holds the cluster entered last; every entry loads.
                    for j in 0..<count {
                        let c = Int(entries[j])
                        out[byChain ? c : Int(clusters[c])] += 1
                    }
                } else {
                    for j in 0..<count {
                        let c = Int(entries[j])
                        if ovl_rules_enter(&state, clusters[c]) >= 0 { out[byChain ? c : Int(clusters[c])] += 1 }
                    }
                }
                i += m
            }
        }
        return loads
    }

    /// Upper bound on loads from edge weights alone: every transfer into a cluster from
    /// outside it may load it.
    public static func edgeBound(_ p: Profile, chainCluster: [Int32], clusters: Int) -> [UInt64] {
        var loads = [UInt64](repeating: 0, count: clusters)
        for (key, w) in p.chainEdges {
            let a = Int32(truncatingIfNeeded: key >> 32), b = Int32(truncatingIfNeeded: key & 0xffff_ffff)
            let kb = chainCluster[Int(b)]
            if kb >= 0 && chainCluster[Int(a)] != kb { loads[Int(kb)] += w }
        }
        for (c, w) in p.outsideEntries {
            let k = chainCluster[Int(c)]
            if k >= 0 { loads[Int(k)] += w }
        }
        return loads
    }

    /// Table 2's columns for every phase.
    public func costs(_ c: Clustering) -> [PhaseCost] {
        // The memory account (the rewriter's layout of the whole image, when no earlier
        // one is kept) and the replays share only the clustering: the account runs on the
        // other core while the traces are replayed and their pages listed for paging.
        let account = DispatchGroup()
        let s = session
        DispatchQueue.global().async(group: account) { _ = s.memory(c) }
        let replayed = loads(phases: Array(session.profiles.indices), c, buffers: session.config.buffers)
        for p in session.profiles where p.hasSequence { preparePaging(p) }
        account.wait()
        return session.profiles.indices.map { cost(phase: $0, c, loads: replayed[$0]) }
    }

    public func cost(phase i: Int, _ c: Clustering, withPaging: Bool = true) -> PhaseCost {
        cost(phase: i, c, withPaging: withPaging, loads: loads(phase: i, c))
    }

    /// Loads per cluster of each phase in `phases` against `c`: replayed when the phase has
    /// its trace (all such traces at once, `replay(phases:_:buffers:byChain:)`), else
    /// bounded from its edge counts.
    func loads(phases: [Int], _ c: Clustering, buffers: Int) -> [[UInt64]] {
        let traced = phases.filter { session.profiles[$0].hasSequence }
        var replayed = replay(phases: traced, c, buffers: buffers, byChain: false).makeIterator()
        return phases.map { i in
            session.profiles[i].hasSequence ? replayed.next()! : CostModel.edgeBound(session.profiles[i], chainCluster: c.chainCluster, clusters: c.clusterCount)
        }
    }

    /// `loads(phases:_:buffers:)` of phase `i` alone, with the session's buffers.
    func loads(phase i: Int, _ c: Clustering) -> [UInt64] {
        loads(phases: [i], c, buffers: session.config.buffers)[0]
    }

    func cost(phase i: Int, _ c: Clustering, withPaging: Bool = true, loads: [UInt64]) -> PhaseCost {
        let p = session.profiles[i]
        let cfg = session.config
        let memory = session.memory(c)
        var pc = CostModel.summarise(phase: p.name, exact: p.hasSequence, loads: loads, clustering: c, config: cfg, sizes: memory.clusterBytes)
        if withPaging && p.hasSequence {
            pc.paging = paging(p, totalMemory: memory.total)
        }
        return pc
    }

    /// Held-out phases: other traces replayed against the same clustering.
    public func evaluate(_ profiles: [Profile], _ c: Clustering) -> [PhaseCost] {
        profiles.map { p in
            let loads = p.hasSequence
                ? CostModel.replay(CostModel.compact(p), chainCluster: c.chainCluster, clusters: c.clusterCount, buffers: session.config.buffers)
                : CostModel.edgeBound(p, chainCluster: c.chainCluster, clusters: c.clusterCount)
            let memory = session.memory(c)
            var pc = CostModel.summarise(phase: p.name, exact: p.hasSequence, loads: loads, clustering: c, config: session.config, sizes: memory.clusterBytes)
            if p.hasSequence { pc.paging = paging(p, totalMemory: memory.total) }
            pc.unseenFunctions = unseen(p)
            return pc
        }
    }

    /// Functions that `p` ran and no training profile did.
    public func unseen(_ p: Profile) -> [String] {
        let prog = session.program
        var out: [String] = []
        for (fi, f) in prog.functions.enumerated() {
            var ran = false, trained = false
            for b in f.blocks {
                if p.blockCounts[b] > 0 { ran = true }
                if session.profiles.contains(where: { $0.blockCounts[b] > 0 }) { trained = true; break }
            }
            if ran && !trained { out.append(prog.functions[fi].name) }
        }
        return out
    }

    static func saturating(_ r: (partialValue: UInt64, overflow: Bool)) -> UInt64 { r.overflow ? .max : r.partialValue }

    /// Table 2's columns from loads per cluster. Clusters weigh `sizes` when given (the
    /// bytes the rewriter writes for each, `MemoryAccount.clusterBytes`), else Figure 1's sizes.
    public static func summarise(phase: String, exact: Bool, loads: [UInt64], clustering c: Clustering, config cfg: Config, sizes: [Int]? = nil) -> PhaseCost {
        let written = sizes.flatMap { $0.count == loads.count ? $0 : nil }
        var bytes = [UInt64](repeating: 0, count: loads.count)
        var total: UInt64 = 0, totalBytes: UInt64 = 0
        var pages: UInt64 = 0
        for k in 0..<loads.count {
            let size = UInt64(max(0, written?[k] ?? Int(c.clusterSize[k])))
            // Saturating: an edge profile's bound times a large buffer can pass 2^64.
            bytes[k] = saturating(loads[k].multipliedReportingOverflow(by: size))
            total = saturating(total.addingReportingOverflow(loads[k]))
            totalBytes = saturating(totalBytes.addingReportingOverflow(bytes[k]))
            let perLoad = (size + UInt64(cfg.pageSize) - 1) / UInt64(cfg.pageSize)
            pages = saturating(pages.addingReportingOverflow(saturating(perLoad.multipliedReportingOverflow(by: loads[k]))))
        }
        return PhaseCost(phase: phase, exact: exact, loads: total, bytesLoaded: totalBytes,
                         estimatedCostSeconds: Double(pages) * cfg.pageReadMicroseconds / 1e6,
                         clusterLoads: loads, clusterBytesLoaded: bytes, paging: nil, unseenFunctions: nil)
    }

    /// Lists the pages `p` touches at the configured page size, unless known: all that
    /// paging needs before it knows the memory it is given.
    func preparePaging(_ p: Profile) {
        let key = pagingKey(p)
        pagingLock.lock()
        defer { pagingLock.unlock() }
        guard paging.index(forKey: key) == nil else { return }
        let pages = CostModel.pageSequence(p, program: session.program, pageSize: UInt64(session.config.pageSize))
        paging[key] = .listed(pages.sequence, pages.count)
    }

    private func pagingKey(_ p: Profile) -> String { pagingKey(p, pageSize: session.config.pageSize) }
    private func pagingKey(_ p: Profile, pageSize: Int) -> String { "\(p.source)\u{0}\(p.name)\u{0}\(pageSize)" }

    /// Demand paging of the original layout in `totalMemory` bytes of page frames.
    /// The pages a trace touches are worked out once per trace and page size. The first
    /// question (`ovl analyze` asks one) is answered by simulating LRU once; from the second
    /// on, one stack-distance pass answers every frame count (`LRUFaultCurve`), so edits
    /// that change the memory cost a lookup.
    public func paging(_ p: Profile, totalMemory: Int) -> PagingBaseline {
        let cfg = session.config
        let frames = max(1, totalMemory / cfg.pageSize)
        let key = pagingKey(p)
        pagingLock.lock()
        defer { pagingLock.unlock() }
        let faults: UInt64
        switch paging[key] {
        case .curve(let curve)?:
            faults = curve.faults(frames: frames)
        case .answered(let pages, let pageCount, let known, let knownFaults)?:
            if known == frames {
                faults = knownFaults
            } else {
                let curve = LRUFaultCurve(pages, pages: pageCount)
                paging[key] = .curve(curve)
                faults = curve.faults(frames: frames)
            }
        case .listed(let pages, let pageCount)?:
            faults = LRUFaultCurve.simulate(pages, pages: pageCount, frames: frames)
            paging[key] = .answered(pages, pageCount, frames, faults)
        case nil:
            let pages = CostModel.pageSequence(p, program: session.program, pageSize: UInt64(cfg.pageSize))
            faults = LRUFaultCurve.simulate(pages.sequence, pages: pages.count, frames: frames)
            paging[key] = .answered(pages.sequence, pages.count, frames, faults)
        }
        return PagingBaseline(frames: frames, pageSize: cfg.pageSize, loads: faults, bytesLoaded: faults * UInt64(cfg.pageSize),
                              estimatedCostSeconds: Double(faults) * cfg.pageReadMicroseconds / 1e6)
    }

    /// What is known of paging one trace at one page size.
    private enum PagingState {
        /// The page sequence alone.
        case listed([UInt32], Int)
        /// The page sequence and the faults for one frame count.
        case answered([UInt32], Int, Int, UInt64)
        case curve(LRUFaultCurve)
    }
    private var paging: [String: PagingState] = [:]
    private let pagingLock = NSLock()

    /// The pages of the original layout a trace touches, in order, repeats folded, as dense
    /// indices from the lowest page of the image's code.
    static func pageSequence(_ p: Profile, program prog: Program, pageSize page: UInt64) -> (sequence: [UInt32], count: Int) {
        guard prog.blockCount > 0, page > 0 else { return ([], 0) }
        let starts = prog.blockStart, sizes = prog.blockSize
        let shift = page & (page - 1) == 0 ? UInt64(page.trailingZeroBitCount) : nil
        @inline(__always) func pageOf(_ a: UInt64) -> Int64 { Int64(bitPattern: shift.map { a >> $0 } ?? a / page) }
        let base = pageOf(starts.min() ?? 0)
        // Each block's first and last page, once: a trace has a hundred times as many
        // segments as the image has blocks.
        var firstPage = [Int64](repeating: 0, count: prog.blockCount)
        var lastPage = [Int64](repeating: 0, count: prog.blockCount)
        for b in 0..<prog.blockCount {
            firstPage[b] = pageOf(starts[b]) - base
            let end = starts[b] + UInt64(sizes[b])
            lastPage[b] = end > 0 ? pageOf(end - 1) - base : firstPage[b] - 1
        }
        var highest: Int64 = 0
        var out: [UInt32] = []
        out.reserveCapacity(p.segments.count)
        var lastSeen: Int64 = -1
        p.forEachSegmentRun { f, l, repeats in
            guard f >= 0 else { return }
            let first = firstPage[Int(f)], end = lastPage[Int(l)]
            // Most segments are one block on the page the last one ended on; a segment on
            // one page touches nothing new when it repeats, one over several pages touches
            // them all again each time.
            if first == lastSeen && end == first { return }
            for _ in 0...(end > first ? repeats : 0) {
                var pg = first
                while pg <= end {
                    if pg != lastSeen {
                        out.append(UInt32(truncatingIfNeeded: pg))
                        highest = max(highest, pg)
                        lastSeen = pg
                    }
                    pg += 1
                }
            }
        }
        return (out, out.isEmpty ? 0 : Int(highest) + 1)
    }
}

/// The processors this process may use, read once: Foundation's answer reads the
/// cgroup's CPU quota from files on every call, and every replay asked.
enum Cores {
    static let active = ProcessInfo.processInfo.activeProcessorCount
}

/// How a replay scans a trace for the events that enter overlay code (`ovl_replay.h`):
/// one event at a time, or sixteen at once with AVX-512. Both give the same entries;
/// `best` is the fastest this processor runs.
public enum ReplayScan: Int32, Sendable, CaseIterable {
    case scalar = 0   // OVL_REPLAY_SCALAR
    case avx512 = 1   // OVL_REPLAY_AVX512

    public static let best: ReplayScan = ovl_replay_vector_available() != 0 ? .avx512 : .scalar

    /// Whether this processor runs it (a scan it cannot run runs as `scalar`).
    public var isAvailable: Bool { self == .scalar || ovl_replay_vector_available() != 0 }
}

/// What every cost model of a session starts from: each trace's chains entered
/// (`CostModel.compact`, and in two bytes an event when every chain number fits), and the
/// pages of the original layout each trace touches at the session's page size. Built a
/// trace at a time on another core: `Session.open` starts each as soon as its trace is
/// read (beside the reading of the next), `Session.init` any still missing.
struct CostBasis: Sendable {
    /// One trace's share.
    struct Part: Sendable {
        /// The compacted chains in two bytes an event when every chain number fits,
        /// else in four (`wide`): one or the other, never both (on a kernel the four-byte
        /// copy was 40 MB of pages touched for nothing).
        let narrow: [UInt16]?
        let wide: [Int32]?
        /// Nil for a profile without a sequence.
        let pages: (sequence: [UInt32], count: Int)?

        init(_ p: Profile, program: Program, chainCount: Int, pageSize: Int) {
            if chainCount <= Int(UInt16.max) + 1 {
                narrow = CostModel.compactNarrow(p)
                wide = nil
            } else {
                narrow = nil
                wide = CostModel.compact(p)
            }
            pages = p.hasSequence ? CostModel.pageSequence(p, program: program, pageSize: UInt64(max(pageSize, 0))) : nil
        }

        var compact: [Int32] { wide ?? narrow!.map { Int32($0) } }
    }

    let pageSize: Int
    let parts: [Part]
    /// Every trace's chains in two bytes an event, when they all fit.
    let narrow: [[UInt16]]?
    /// Per profile; nil for one without a sequence.
    let pages: [(sequence: [UInt32], count: Int)?]

    init(_ parts: [Part], pageSize: Int) {
        self.pageSize = pageSize
        self.parts = parts
        narrow = parts.allSatisfy { $0.narrow != nil } ? parts.map { $0.narrow! } : nil
        pages = parts.map(\.pages)
    }

    /// The compacted chains in four bytes an event (converted when kept in two).
    var compact: [[Int32]] { parts.map(\.compact) }
    /// The same, for replays when `narrow` is nil (then every part keeps four bytes).
    var wide: [[Int32]] { parts.map { $0.wide ?? $0.compact } }
}

/// Faults of least-recently-used replacement over one page sequence for every number of
/// frames at once (Mattson's stack algorithm): an access hits in F frames exactly when
/// fewer than F other pages were touched since the page's last access (LRU keeps the F
/// most recent pages), so one pass that measures each access's stack distance gives a
/// histogram, and the faults for F frames are the first accesses plus the accesses at
/// distance above F. The distance is counted with a Fenwick tree over access times, one
/// mark at each page's latest access: O(n log n) once, O(1) per frame count.
public struct LRUFaultCurve: Sendable {
    /// `faultsAbove[d]`: accesses whose stack distance exceeds `d` (first accesses
    /// included), for d in 0...pages; constant beyond.
    let faultsAbove: [UInt64]

    public init(_ sequence: [UInt32], pages: Int) {
        let n = sequence.count
        var tree = [Int32](repeating: 0, count: n + 1)   // Fenwick tree, 1-based times
        var lastSeen = [Int32](repeating: -1, count: max(pages, 0))
        var histogram = [UInt64](repeating: 0, count: pages + 2)   // by distance; [pages+1]: first access
        var marks: Int32 = 0
        tree.withUnsafeMutableBufferPointer { t in
            func add(_ i: Int, _ v: Int32) {
                var i = i
                while i <= n { t[i] += v; i += i & -i }
            }
            func prefix(_ i: Int) -> Int32 {
                var i = i, s: Int32 = 0
                while i > 0 { s += t[i]; i -= i & -i }
                return s
            }
            for (time, pg) in sequence.enumerated() {
                let at = time + 1
                let before = lastSeen[Int(pg)]
                if before < 0 {
                    histogram[pages + 1] += 1
                    marks += 1
                } else {
                    // Distinct pages touched after the last access, this one included.
                    let distance = Int(marks - prefix(Int(before)) + 1)
                    histogram[distance] += 1
                    add(Int(before), -1)
                }
                add(at, 1)
                lastSeen[Int(pg)] = Int32(at)
            }
        }
        var above = [UInt64](repeating: 0, count: pages + 1)
        var sum: UInt64 = histogram[pages + 1]
        var d = pages
        while d >= 0 {
            above[d] = sum
            sum += histogram[d]
            d -= 1
        }
        faultsAbove = above
    }

    /// Faults with `frames` page frames (at least one).
    public func faults(frames: Int) -> UInt64 {
        faultsAbove[min(max(frames, 0), faultsAbove.count - 1)]
    }

    /// Faults of LRU in `frames` frames over `sequence` (dense page indices below `pages`)
    /// by simulation, for a single frame count: a doubly linked list in recency order.
    public static func simulate(_ sequence: [UInt32], pages: Int, frames: Int) -> UInt64 {
        guard pages > 0 else { return 0 }
        var prev = [Int32](repeating: -1, count: pages), next = [Int32](repeating: -1, count: pages)
        var present = [Bool](repeating: false, count: pages)
        var head: Int32 = -1, tail: Int32 = -1   // head: most recent
        var resident = 0
        var faults: UInt64 = 0
        func unlink(_ x: Int32) {
            let p = prev[Int(x)], n = next[Int(x)]
            if p >= 0 { next[Int(p)] = n } else { head = n }
            if n >= 0 { prev[Int(n)] = p } else { tail = p }
        }
        func pushFront(_ x: Int32) {
            prev[Int(x)] = -1; next[Int(x)] = head
            if head >= 0 { prev[Int(head)] = x }
            head = x
            if tail < 0 { tail = x }
        }
        for pg in sequence {
            let x = Int32(pg)
            if present[Int(pg)] {
                if head != x { unlink(x); pushFront(x) }
                continue
            }
            faults += 1
            if resident >= max(frames, 1) {
                let victim = tail
                unlink(victim)
                present[Int(victim)] = false
                resident -= 1
            }
            present[Int(pg)] = true
            pushFront(x)
            resident += 1
        }
        return faults
    }
}

/// Events `range` of trace `trace`: a stretch's share of one trace (`CostModel.replay`).
struct ReplayPiece: Sendable {
    let trace: Int
    let range: Range<Int>
}

/// The traces and results of a replay cut into stretches (`CostModel.replay`): read by
/// every stretch, each result written by its own stretch only.
private final class ReplayStretches<Chain: FixedWidthInteger & SendableMetatype>: @unchecked Sendable {
    let sequences: [[Chain]]
    let chainCluster: [Int32]
    let pieces: [[ReplayPiece]]
    private(set) var results: [[(trace: Int, loads: [UInt64])]]
    private let lock = NSLock()

    init(_ sequences: [[Chain]], _ chainCluster: [Int32], pieces: [[ReplayPiece]]) {
        self.sequences = sequences
        self.chainCluster = chainCluster
        self.pieces = pieces
        results = Array(repeating: [], count: pieces.count)
    }

    func set(_ i: Int, _ r: [(trace: Int, loads: [UInt64])]) {
        lock.lock()
        results[i] = r
        lock.unlock()
    }
}
