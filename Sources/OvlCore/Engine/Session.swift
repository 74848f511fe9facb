import Foundation

/// The engine's one entry point for the CLI and the explorer: an image, its profiles
/// and a configuration, with everything that does not depend on γ, the buffer size or
/// the core set computed once (decoding, chains, the cluster graph), so that changing
/// those re-runs only the coalescer.
public final class Session: @unchecked Sendable {
    public let program: Program
    public let profiles: [Profile]
    public private(set) var config: Config
    public private(set) var chains: Chains
    public private(set) var graph: ClusterGraph
    public private(set) var core: CoreSet
    /// Core membership per chain for the current core set.
    public private(set) var coreChains: [Bool]

    public convenience init(program: Program, profiles: [Profile], config: Config, chains: Chains) {
        self.init(program: program, profiles: profiles, config: config, chains: chains, basisParts: [])
    }

    /// `basisParts`: the cost basis of the first profiles, under way (`Session.open`).
    init(program: Program, profiles: [Profile], config: Config, chains: Chains, basisParts: [Eventually<CostBasis.Part>]) {
        self.program = program
        self.profiles = profiles
        self.config = config
        self.chains = chains
        // The rest built on the other core while this one builds the graph and the core set.
        var parts = Array(basisParts.prefix(profiles.count))
        for p in profiles.dropFirst(parts.count) { parts.append(Session.basisPart(p, program: program, chains: chains, config: config)) }
        let pageSize = config.pageSize, all = parts
        self.costBasisTask = Eventually { CostBasis(all.map(\.value), pageSize: pageSize) }
        self.graph = ClusterGraph.build(program: program, chains: chains, profiles: profiles)
        self.core = CoreSet.resolve(config, program: program)
        self.coreChains = []
        self.coreChains = Session.chainMembership(core, program: program, chains: chains)
        // The rewriter's basis (the call graph's components above all), on another core
        // while this one clusters: the first memory account waited for it.
        startRewriteBasis()
    }

    /// Starts building the rewriter's basis (again, for the tests' from-scratch side).
    func startRewriteBasis() {
        rewriteBasisTask = Eventually { [self] in imageRefusal.image == nil ? RewriteBasis.build(self) : nil }
    }

    /// Opens an image and its profiles.
    public static func open(image: String, profiles: [String], config: Config, showProgress: Bool = Progress.stderrIsTerminal) throws -> Session {
        try config.validate(source: "configuration")
        if profiles.filter({ $0 == "-" }).count > 1 { throw OvlError("--profile - (standard input) can be given only once") }
        let elf = try Program.readImage(path: image)
        // The first trace is read on the other core while this one decodes the image.
        let early = try profiles.first.flatMap { try ProfileLoader.startReading(path: $0, elf: elf, showProgress: showProgress) }
        var earlyTaken = false
        defer { if !earlyTaken { early?.cancel() } }
        let program = try Program.build(elf: elf, options: ProgramOptions(excludedSections: config.excludeSections))
        let chains = Chains(program: program, granularity: config.granularity)
        var loaded: [Profile] = []
        var parts: [Eventually<CostBasis.Part>] = []
        for (i, p) in profiles.enumerated() {
            if i == 0, let early {
                earlyTaken = true
                loaded.append(try ProfileLoader.load(early, program: program, chains: chains))
            } else {
                loaded.append(try ProfileLoader.load(path: p, program: program, chains: chains, showProgress: showProgress))
            }
            // Its share of the cost basis, beside the reading of the next.
            parts.append(basisPart(loaded[i], program: program, chains: chains, config: config))
        }
        program.releaseAddressTable()
        return Session(program: program, profiles: loaded, config: config, chains: chains, basisParts: parts)
    }

    static func basisPart(_ p: Profile, program: Program, chains: Chains, config: Config) -> Eventually<CostBasis.Part> {
        let chainCount = chains.count, pageSize = config.pageSize
        return Eventually { CostBasis.Part(p, program: program, chainCount: chainCount, pageSize: pageSize) }
    }

    static func chainMembership(_ core: CoreSet, program: Program, chains: Chains) -> [Bool] {
        var member = [Bool](repeating: false, count: chains.count)
        for f in core.functions {
            for b in program.functions[Int(f)].blocks { member[Int(chains.blockChain[b])] = true }
        }
        return member
    }

    /// Applies a new configuration. Only what depends on the change is recomputed.
    public func update(_ newConfig: Config) throws {
        try newConfig.validate(source: "configuration")
        guard newConfig.excludeSections == config.excludeSections else {
            throw OvlError("changing exclude_sections needs the image read again; open it anew")
        }
        let coreChanged = newConfig.coreFunctions != config.coreFunctions || newConfig.coreExclude != config.coreExclude
            || newConfig.corePreset != config.corePreset
        if newConfig.granularity != config.granularity {
            throw OvlError("changing granularity needs the profiles read again; open it anew")
        }
        config = newConfig
        if coreChanged {
            core = CoreSet.resolve(config, program: program)
            coreChains = Session.chainMembership(core, program: program, chains: chains)
        }
    }

    public func parameters(recordEvents: Bool = true) -> CoalescerParameters {
        CoalescerParameters(gamma: config.gamma, bufferSize: config.bufferSize, coreChains: coreChains,
                            defragmentIntoCore: config.defragmentIntoCore, recordEvents: recordEvents)
    }

    /// Clusters the code with the configured method: Figure 2, or the affinity layout.
    public func cluster(recordEvents: Bool = true) -> Clustering {
        switch config.method {
        case .figure2: return Coalescer.run(graph, parameters(recordEvents: recordEvents))
        case .affinity:
            return AffinityLayout.run(graph: graph, sequences: trainingSequences, coreChains: coreChains, chainFunction: chainFunctions,
                                      residentBudget: config.residentBudget, bufferSize: config.bufferSize, gamma: config.gamma)
        }
    }

    /// Table 1's statistics for a clustering.
    public func statistics(_ c: Clustering) -> Table1Row {
        Table1Row(session: self, clustering: c)
    }

    /// What the image rewritten for `c` occupies in memory: measured on the rewriter's
    /// layout when `ovl rewrite` can write this image, else estimated (`MemoryAccount`).
    /// The last answer is kept, since every report of one clustering asks again.
    public func memory(_ c: Clustering) -> MemoryAccount {
        let key = MemoryKey(chainCluster: c.chainCluster, buffers: config.buffers, bufferSize: config.bufferSize, storage: config.storage)
        memoryLock.lock()
        if let last = lastMemory, last.0 == key { memoryLock.unlock(); return last.1 }
        memoryLock.unlock()
        let m: MemoryAccount
        do {
            m = try Rewriter.account(session: self, clustering: c)
        } catch let e as OvlError {
            m = MemoryAccount.estimate(session: self, clustering: c, why: e.description)
        } catch {
            m = MemoryAccount.estimate(session: self, clustering: c, why: "\(error)")
        }
        memoryLock.lock()
        lastMemory = (key, m)
        memoryLock.unlock()
        return m
    }

    struct MemoryKey: Equatable {
        var chainCluster: [Int32]
        var buffers: Int
        var bufferSize: Int
        var storage: StorageBackend
    }
    private var lastMemory: (MemoryKey, MemoryAccount)?
    /// Why the image cannot be rewritten whatever the configuration, if it cannot
    /// (`Rewriter.imageRefusal`), found once: the explorer asks on every edit, and the
    /// check reads the whole symbol table.
    var imageRefusal: (image: Error?, code: Error?) {
        if let known = refusal.value(for: 0) { return (known.image, known.code) }
        let e = Rewriter.imageRefusal(program)
        refusal.store(Refusal(image: e.image, code: e.code), for: 0)
        return e
    }
    private struct Refusal: @unchecked Sendable { let image: Error?; let code: Error? }
    private let refusal = Memo<Int, Refusal>(capacity: 1)
    /// What the rewriter needs before any clustering (`RewriteBasis`), found once, as the
    /// session opens, when the image can be rewritten (nil when it cannot).
    private(set) var rewriteBasisTask: Eventually<RewriteBasis?>? = nil
    /// The rewriter's units laid out for earlier clusterings (`UnitMemo`).
    let rewriteUnits = UnitMemo()

    /// Forgets the rewriter's layouts kept from earlier clusterings (benchmarks measure
    /// the memory account without them).
    public func discardKeptLayouts() {
        rewriteUnits.removeAll()
        memoryLock.lock()
        lastMemory = nil
        memoryLock.unlock()
    }
    private let memoryLock = NSLock()

    /// Function of a chain (its first block's).
    public func function(ofChain c: Int) -> Int { Int(program.blockFunction[Int(chains.firstBlock[c])]) }

    /// The training traces as the chains entered, in order (`CostModel.compact`).
    /// Made on first use (only the affinity layout needs them), under a lock: the
    /// explorer's what-if worker may ask at the same time as its analyses.
    public var trainingSequences: [[Int32]] {
        if let known = sequences.value(for: 0) { return known }
        let s = zip(profiles, costBasis.parts).filter { $0.0.hasSequence }.map(\.1.compact)
        sequences.store(s, for: 0)
        return s
    }
    private let sequences = Memo<Int, [[Int32]]>(capacity: 1)

    /// What every cost model of this session starts from (`CostBasis`).
    var costBasis: CostBasis { costBasisTask.value }
    private let costBasisTask: Eventually<CostBasis>

    /// The chain each address-taken function starts with, ascending, without repeats:
    /// where a pointer may enter the code (`MemoryAccount.estimate` asks on every edit).
    /// Found on first use, under a lock.
    var addressTakenChains: [Int32] {
        if let known = takenChains.value(for: 0) { return known }
        let fs = program.functions
        let c = Set(program.addressTakenFunctions.filter { fs[Int($0)].blockCount > 0 }.map { chains.blockChain[Int(fs[Int($0)].firstBlock)] }).sorted()
        takenChains.store(c, for: 0)
        return c
    }
    private let takenChains = Memo<Int, [Int32]>(capacity: 1)
    /// The function of each chain.
    public private(set) lazy var chainFunctions: [Int32] = (0..<chains.count).map { Int32(function(ofChain: $0)) }

    /// Bytes of code executed in any profile.
    public private(set) lazy var executedCodeBytes: Int = {
        // The arrays read once: through the profiles (classes), every read was checked for
        // exclusive access.
        let counts = profiles.map(\.blockCounts), sizes = program.blockSize
        var n = 0
        for b in 0..<program.blockCount where counts.contains(where: { $0[b] > 0 }) { n += Int(sizes[b]) }
        return n
    }()
}
