/// One row of the paper's Table 1 for a configuration, with the memory accounting spelt
/// out. JSON keys are camelCase and stable: scripts read them.
public struct Table1Row: Codable, Sendable, Equatable {
    public var gamma: Double
    public var bufferSize: Int
    public var buffers: Int
    public var granularity: String
    public var clusters: Int
    public var averageClusterSize: Double
    public var maxClusterSize: Int
    /// Code in memory after rewriting: the program's resident text as rewritten, the
    /// overlay manager's code and the entry thunks (`memory` has the parts).
    public var residentBytes: Int
    /// Figure 2's resident code: core, hot and oversize chains with their stubs as
    /// Figure 1 counts them (what γ bounds).
    public var residentCodeBytes: Int
    /// The overlay manager's code, measured.
    public var overlayManagerBytes: Int
    /// Zero-filled manager memory: the return stack (the paper's restore stubs, made per
    /// call in flight) and the manager's variables. The key keeps its old name for scripts.
    public var restoreStubBytes: Int
    /// Initialised manager data: the cluster address table, the entry table, the load
    /// counters and the manager's variables.
    public var clusterTableBytes: Int
    /// What the rewritten image occupies: resident + manager data + buffers.
    public var totalMemory: Int
    /// `totalMemory` part by part, and whether it was measured on the rewriter's layout.
    public var memory: MemoryAccount
    /// Code bytes of the analysed executable sections (functions and the code between
    /// them, not alignment padding): what the reduction is measured against.
    public var originalTextBytes: Int
    /// The same sections' sizes, padding included.
    public var textSectionBytes: Int
    public var reductionPercent: Double
    public var coreBaseBytes: Int
    public var coreLimit: Int
    public var coreFunctions: Int
    public var hotChains: Int
    public var oversizeChains: Int
    public var chains: Int
    public var functions: Int
    public var executedCodeBytes: Int

    public init(session s: Session, clustering c: Clustering) {
        let cfg = s.config
        gamma = cfg.gamma
        bufferSize = cfg.bufferSize
        buffers = cfg.buffers
        granularity = cfg.granularity.rawValue
        clusters = c.clusterCount
        let total = c.clusterSize.reduce(0) { $0 + Int($1) }
        averageClusterSize = clusters == 0 ? 0 : (Double(total) / Double(clusters) * 10).rounded() / 10
        maxClusterSize = Int(c.clusterSize.max() ?? 0)
        residentCodeBytes = c.residentCodeBytes
        let m = s.memory(c)
        memory = m
        overlayManagerBytes = m.managerCode
        residentBytes = m.residentText + m.managerCode + m.thunks
        restoreStubBytes = m.managerZero
        clusterTableBytes = m.managerData
        totalMemory = m.total
        originalTextBytes = s.program.codeBytes
        textSectionBytes = s.program.textSectionBytes
        reductionPercent = originalTextBytes == 0 ? 0 : ((Double(originalTextBytes - totalMemory) / Double(originalTextBytes)) * 1000).rounded() / 10
        coreBaseBytes = c.coreBaseBytes
        coreLimit = c.coreLimit
        coreFunctions = s.core.count
        hotChains = c.chainState.filter { $0 == .hot }.count
        oversizeChains = c.oversizeChains.count
        chains = s.chains.count
        functions = s.program.functions.count
        executedCodeBytes = s.executedCodeBytes
    }
}
