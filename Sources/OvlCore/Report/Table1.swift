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
    /// Memory-resident code after rewriting: core, hot and oversize chains with their
    /// stubs, plus the overlay manager's code.
    public var residentBytes: Int
    public var residentCodeBytes: Int
    public var overlayManagerBytes: Int
    public var restoreStubBytes: Int
    public var clusterTableBytes: Int
    /// resident + buffers + restore stubs + cluster address table.
    public var totalMemory: Int
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
        overlayManagerBytes = StubModel.managerCodeBytes
        residentBytes = residentCodeBytes + overlayManagerBytes
        restoreStubBytes = StubModel.restoreStubCount * StubModel.restoreStubBytes
        clusterTableBytes = StubModel.clusterTableEntryBytes * (clusters + 1)
        totalMemory = residentBytes + cfg.bufferSize * cfg.buffers + restoreStubBytes + clusterTableBytes
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
