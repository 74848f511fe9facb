/// What an overlaid image occupies in memory, part by part: the figure every reduction
/// and every paging comparison uses. For an image `ovl rewrite` can write, it is measured
/// on the very layout the rewriter writes (`Rewriter.account`), so `analyze` and the
/// written image agree byte for byte; otherwise (a kernel, an image without relocations)
/// it is estimated part by part from the clustering (`MemoryAccount.estimate`) and says so.
public struct MemoryAccount: Codable, Sendable, Equatable {
    /// The program's code kept in memory, as rewritten (branches relaxed, hot loop heads
    /// aligned, chain ends given explicit jumps).
    public var residentText: Int
    /// The overlay manager: dynamic loader, `_dynamic_call`, `_dynamic_jmp`, the restore
    /// path and the exit hook, with their constants.
    public var managerCode: Int
    /// Entry thunks: one for each cold block that resident code, data or another cluster
    /// transfers to (15 B for a jump thunk, 10 B for a call thunk).
    public var thunks: Int
    /// Initialised manager data: its variables, the entry table (8 B a thunk target), the
    /// cluster address table (4 B a cluster, plus one) and the load counters (16 B a cluster).
    public var managerData: Int
    /// Zero-filled manager memory: its own variables and the restore-stub pool with its
    /// keys and hash (one stub for each return site in cluster code).
    public var managerZero: Int
    /// The code buffers.
    public var buffers: Int
    /// Measured on the rewriter's layout (true) or estimated.
    public var exact: Bool
    /// Where the figure comes from, in words.
    public var note: String
    /// Each cluster's bytes as the rewriter writes it (what one load copies), when
    /// measured and the rewriter kept every cluster: the cost model then charges loads
    /// these sizes, so its bytes loaded equal the image's own counters. Not in JSON.
    public var clusterBytes: [Int]? = nil

    public var total: Int { residentText + managerCode + thunks + managerData + managerZero + buffers }

    public init(residentText: Int, managerCode: Int, thunks: Int, managerData: Int, managerZero: Int, buffers: Int, exact: Bool, note: String,
                clusterBytes: [Int]? = nil) {
        self.residentText = residentText; self.managerCode = managerCode; self.thunks = thunks
        self.managerData = managerData; self.managerZero = managerZero; self.buffers = buffers
        self.exact = exact; self.note = note; self.clusterBytes = clusterBytes
    }

    enum CodingKeys: String, CodingKey {
        case residentText, managerCode, thunks, managerData, managerZero, buffers, exact, note, total
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        residentText = try c.decode(Int.self, forKey: .residentText)
        managerCode = try c.decode(Int.self, forKey: .managerCode)
        thunks = try c.decode(Int.self, forKey: .thunks)
        managerData = try c.decode(Int.self, forKey: .managerData)
        managerZero = try c.decode(Int.self, forKey: .managerZero)
        buffers = try c.decode(Int.self, forKey: .buffers)
        exact = try c.decode(Bool.self, forKey: .exact)
        note = try c.decode(String.self, forKey: .note)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(residentText, forKey: .residentText)
        try c.encode(managerCode, forKey: .managerCode)
        try c.encode(thunks, forKey: .thunks)
        try c.encode(managerData, forKey: .managerData)
        try c.encode(managerZero, forKey: .managerZero)
        try c.encode(buffers, forKey: .buffers)
        try c.encode(exact, forKey: .exact)
        try c.encode(note, forKey: .note)
        try c.encode(total, forKey: .total)
    }

    /// The parts in words, for text output: "resident text 2,018 + manager 3,959 + …".
    public var breakdown: String {
        "resident text \(Describe.count(residentText)) + manager \(Describe.count(managerCode)) + thunks \(Describe.count(thunks))"
            + " + manager data \(Describe.count(managerData)) + return stack and manager variables \(Describe.count(managerZero))"
            + " + buffers \(Describe.count(buffers))"
    }
}

extension MemoryAccount {
    /// The parts estimated from the clustering, for an image the rewriter cannot write
    /// (`why` says what it refused): the manager as built for this number of buffers
    /// (measured with the system's C compiler when there is one), Figure 1's resident
    /// code, a resident thunk and an entry for each cold chain that resident code transfers
    /// to or whose function's address is taken (a cluster's own transfers go through
    /// thunks inside the cluster, as the rewriter writes them when they fit), and the
    /// return stack sized as the rewriter sizes it.
    public static func estimate(session s: Session, clustering c: Clustering, why: String, config: Config? = nil) -> MemoryAccount {
        let cfg = config ?? s.config
        let g = s.graph
        let unit = c.chainCluster
        // Chains that need a jump thunk (bit 0) or a call thunk (bit 1), one byte a chain:
        // the edges are many, and a hashed set per edit cost more than the rest together.
        var target = [UInt8](repeating: 0, count: unit.count)
        var sites = 0
        // The packed edges (one 32-byte record each, read front to back; their order does
        // not matter here) and unchecked buffers: the loop runs on every edit.
        let edges = g.edgesByChains
        edges.withUnsafeBufferPointer { edges in
            unit.withUnsafeBufferPointer { unit in
                target.withUnsafeMutableBufferPointer { target in
                    for e in edges {
                        let ua = unit[Int(e.a)], ub = unit[Int(e.b)]
                        guard ua != ub else { continue }
                        if ua < 0 && ub >= 0 {
                            if e.callAB > 0 { target[Int(e.b)] |= 2 }
                            if e.jumpAB > 0 { target[Int(e.b)] |= 1 }
                        }
                        if ub < 0 && ua >= 0 {
                            if e.callBA > 0 { target[Int(e.a)] |= 2 }
                            if e.jumpBA > 0 { target[Int(e.a)] |= 1 }
                        }
                        if ua >= 0 && e.callAB > 0 { sites += 1 }
                        if ub >= 0 && e.callBA > 0 { sites += 1 }
                    }
                }
            }
        }
        for ch in s.addressTakenChains where unit[Int(ch)] >= 0 { target[Int(ch)] |= 1 }
        var jumpTargets = 0, callTargets = 0, targets = 0
        for t in target where t != 0 {
            targets += 1
            jumpTargets += Int(t & 1)
            callTargets += Int(t >> 1)
        }
        let manager = try? ManagerLinker.sizes(buffers: cfg.buffers)
        let clusters = c.clusterCount
        let stride = (cfg.bufferSize + 15) / 16 * 16
        return MemoryAccount(
            residentText: c.residentCodeBytes,
            managerCode: manager?.text ?? 0,
            thunks: jumpTargets * 15 + callTargets * 10,
            managerData: (manager?.data ?? 0) + targets * 8 + (clusters + 1) * 4 + clusters * 16,
            managerZero: (manager?.bss ?? 0) + ImageLayout.returnStackCapacity(sites: sites) * 16,
            buffers: stride * cfg.buffers, exact: false,
            note: "estimated (\(why))" + (manager == nil ? "; the manager's size is unknown: no C compiler to build it" : ""))
    }
}
