import Foundation

/// What `ovl analyze` reports: Table 1's row, the clusters, the profiles read.
public struct AnalysisReport: Encodable, Sendable {
    public struct ClusterEntry: Encodable, Sendable {
        /// Cluster id, or -1 for the memory-resident code.
        public var id: Int
        public var codeSize: Int
        public var resident: Bool
        public var chains: Int
        /// Where each member chain starts: `function` or `function+0xoff`.
        public var members: [String]
        /// Loads and bytes loaded over all phases (0 for resident code).
        public var loads: UInt64
        public var bytesLoaded: UInt64
    }

    public struct ProfileEntry: Encodable, Sendable {
        public var name: String
        public var source: String
        public var format: String
        public var exactOrder: Bool
        public var stats: ProfileStats
    }

    public var image: String
    public var row: Table1Row
    public var profiles: [ProfileEntry]
    public var clusterList: [ClusterEntry]
    public var oversize: [String]
    public var clusteringMilliseconds: Double
    /// Table 2 per phase (the profiles given with --profile).
    public var phases: [PhaseCost]
    /// Held-out phases (--evaluate), replayed against the same clustering.
    public var evaluations: [PhaseCost]

    public init(session s: Session, clustering c: Clustering, milliseconds: Double, phases: [PhaseCost] = [], evaluations: [PhaseCost] = []) {
        self.phases = phases
        self.evaluations = evaluations
        image = s.program.path
        row = s.statistics(c)
        profiles = s.profiles.map {
            ProfileEntry(name: $0.name, source: $0.source, format: $0.format.rawValue, exactOrder: $0.hasSequence, stats: $0.stats)
        }
        var list: [ClusterEntry] = []
        var resident: [String] = []
        for ch in 0..<s.chains.count where c.chainCluster[ch] < 0 { resident.append(Describe.chain(ch, session: s)) }
        list.append(ClusterEntry(id: -1, codeSize: c.residentCodeBytes, resident: true, chains: resident.count, members: resident, loads: 0, bytesLoaded: 0))
        for k in 0..<c.clusterCount {
            let members = c.clusterChains[k].map { Describe.chain(Int($0), session: s) }
            let loads = phases.reduce(UInt64(0)) { $0 + ($1.clusterLoads.count > k ? $1.clusterLoads[k] : 0) }
            let bytes = phases.reduce(UInt64(0)) { $0 + ($1.clusterBytesLoaded.count > k ? $1.clusterBytesLoaded[k] : 0) }
            list.append(ClusterEntry(id: k, codeSize: Int(c.clusterSize[k]), resident: false, chains: members.count, members: members, loads: loads, bytesLoaded: bytes))
        }
        clusterList = list
        oversize = c.oversizeChains.map { Describe.chain(Int($0), session: s) }
        clusteringMilliseconds = milliseconds
    }

    enum CodingKeys: String, CodingKey {
        case image, profiles, clusterList, oversize, clusteringMilliseconds, phases, evaluations
        case loads, bytesLoaded, estimatedCostSeconds, paging, exact, noOverlays
    }

    /// The first baseline: no overlays at all. Nothing is ever loaded, and all the code
    /// stays in memory.
    public struct NoOverlays: Encodable, Sendable {
        public var loads: Int = 0
        public var totalMemory: Int
    }

    public func encode(to encoder: Encoder) throws {
        // The row's fields sit at the top level, beside the lists.
        try row.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(image, forKey: .image)
        try c.encode(profiles, forKey: .profiles)
        try c.encode(clusterList, forKey: .clusterList)
        try c.encode(oversize, forKey: .oversize)
        try c.encode(clusteringMilliseconds, forKey: .clusteringMilliseconds)
        try c.encode(phases, forKey: .phases)
        try c.encode(evaluations, forKey: .evaluations)
        try c.encode(NoOverlays(totalMemory: row.originalTextBytes), forKey: .noOverlays)
        // With one phase, its Table 2 figures also stand at the top level.
        if phases.count == 1 {
            let p = phases[0]
            try c.encode(p.loads, forKey: .loads)
            try c.encode(p.bytesLoaded, forKey: .bytesLoaded)
            try c.encode(p.estimatedCostSeconds, forKey: .estimatedCostSeconds)
            try c.encode(p.exact, forKey: .exact)
            try c.encodeIfPresent(p.paging, forKey: .paging)
        }
    }

    /// Table 2's columns, one row per phase.
    public static let table2Header = ["phase", "loads", "KB loaded", "est. cost (s)", "paging loads", "paging cost (s)", "vs paging"]

    /// How the loads compare with paging the original layout in the same memory: "12× fewer",
    /// "3.1× more", "none" (neither loads), "∞× fewer" (only paging loads).
    public static func pagingComparison(_ p: PhaseCost) -> String {
        guard let pg = p.paging else { return "-" }
        return pagingComparison(loads: p.loads, paging: pg.loads)
    }

    public static func pagingComparison(loads: UInt64, paging: UInt64) -> String {
        if loads == 0 { return paging == 0 ? "both 0" : "∞× fewer" }
        if paging == 0 { return "paging 0" }
        let r = Double(paging) / Double(loads)
        func f(_ v: Double) -> String { v >= 10 ? String(format: "%.0f", v) : String(format: "%.1f", v) }
        return r >= 1 ? "\(f(r))× fewer" : "\(f(1 / r))× more"
    }

    public static func table2Cells(_ p: PhaseCost) -> [String] {
        let bound = p.exact ? "" : "≤"
        return [p.phase + (p.exact ? "" : " (bound)"), bound + Describe.count(p.loads),
                bound + Describe.count(p.bytesLoaded / 1024), bound + String(format: "%.4f", p.estimatedCostSeconds),
                p.paging.map { Describe.count($0.loads) } ?? "-",
                p.paging.map { String(format: "%.4f", $0.estimatedCostSeconds) } ?? "-", pagingComparison(p)]
    }

    /// Table 1's columns as the paper prints them.
    public static let table1Header = ["γ(%)", "clusters", "avg size", "max size", "resident", "total memory", "reduction"]

    public static func table1Cells(_ r: Table1Row) -> [String] {
        [Describe.gamma(r.gamma), Describe.count(r.clusters), String(format: "%.0f", r.averageClusterSize),
         Describe.count(r.maxClusterSize), Describe.count(r.residentBytes), Describe.count(r.totalMemory),
         Describe.percent(r.reductionPercent)]
    }

    /// The summary above a table: image, code size, profiles, core.
    public static func preamble(session s: Session) -> String {
        let p = s.program
        var out = "image     \(p.path): \(Describe.count(p.codeBytes)) B of code in \(p.analysedSections.joined(separator: " ")) (sections \(Describe.count(p.textSectionBytes)) B, padding \(Describe.count(p.paddingBytes)) B)\n"
        if !p.excludedSections.isEmpty { out += "excluded  \(p.excludedSections.joined(separator: " ")) (not counted)\n" }
        out += "program   \(Describe.count(p.functions.count)) functions, \(Describe.count(p.blockCount)) blocks, \(Describe.count(s.chains.count)) chains (\(s.config.granularity.rawValue) granularity)\n"
        for prof in s.profiles {
            let st = prof.stats
            var line = "profile   \(prof.name) (\(prof.format.rawValue)): \(Describe.count(st.addresses)) addresses, \(Describe.count(st.matched)) in the image"
            if st.foreign > 0 { line += ", \(Describe.count(st.foreign)) outside it set aside" }
            if st.excludedSection > 0 { line += ", \(Describe.count(st.excludedSection)) in excluded sections" }
            if !prof.hasSequence { line += " (edge weights only: loads are an estimate)" }
            out += line + "\n"
        }
        if s.profiles.isEmpty { out += "profile   none: every edge weighs 0, clustering follows the code's layout only\n" }
        let executed = s.executedCodeBytes
        if !s.profiles.isEmpty && p.codeBytes > 0 {
            out += "executed  \(Describe.count(executed)) B of code (\(Describe.percent(Double(executed) * 100 / Double(p.codeBytes))))\n"
        }
        let required = s.core.reasons.values.filter { $0.origin == .required }.count
        out += "core      \(Describe.count(s.core.count)) functions (preset \(s.config.corePreset.rawValue)\(required > 0 ? ", \(required) required" : ""))\n"
        return out
    }
}
