/// Which code units a call may enter before it returns: the question that decides whether
/// a call in buffer code needs the overlay manager.
///
/// A call from cluster K normally goes through a call thunk, because the callee could
/// load another cluster over K before it returns to the buffer (the return-address trap).
/// When every block the callee can reach — its own blocks, everything they jump to, and
/// everything they call, transitively — is resident or in K, and none of it transfers
/// through a pointer the rewriter cannot follow, K stays in the buffer for the whole call:
/// the call can go straight to the callee and return straight to K. The replay's load
/// count is unchanged (entering K from K never loads), only the manager's work goes.
///
/// Computed on the block graph (fall-through and return-site edges, direct jumps and
/// calls, resolved jump tables), condensed into strongly connected components
/// (Tarjan, iterative); each component's value is the join of its blocks' units and its
/// successors' values.
struct CallReach {
    /// The value of a block (of its component): `resident` (reaches only resident code), a
    /// unit number ≥ 1 (reaches only resident code and that cluster), or `many`.
    static let resident: Int32 = 0
    static let many: Int32 = -1

    /// Functions that return twice. The second return comes through a saved return
    /// address (a `jmp_buf`, a forked child's stack), so a call to one must not sit in a
    /// buffer: the core set keeps their callers resident (`CoreSet.callersOfReturnsTwice`),
    /// and such calls are never treated as staying in their cluster.
    static let returnsTwice: Set<String> = [
        "setjmp", "_setjmp", "__setjmp", "sigsetjmp", "__sigsetjmp", "savectx",
        "vfork", "__vfork", "getcontext", "__getcontext",
    ]

    /// `unit(b)`: 0 for resident blocks, k + 1 for cluster k.
    init(program p: Program, unit: (Int) -> Int) {
        self.init(CallReach.Graph(program: p), unit: unit)
    }

    /// On a block graph condensed before (`Graph`): each component, successors first,
    /// joins its blocks' units with its successors' values.
    init(_ g: Graph, unit: (Int) -> Int) {
        var compValue = [Int32](repeating: CallReach.resident, count: g.componentCount)
        for c in 0..<g.componentCount {
            var acc = g.unresolved[c] ? CallReach.many : CallReach.resident
            var m = Int(g.memberStart[c])
            let mEnd = Int(g.memberStart[c + 1])
            while m < mEnd && acc != CallReach.many {
                acc = CallReach.join(acc, Int32(unit(Int(g.members[m]))))
                m += 1
            }
            var e = Int(g.successorStart[c])
            let eEnd = Int(g.successorStart[c + 1])
            while e < eEnd && acc != CallReach.many {
                acc = CallReach.join(acc, compValue[Int(g.successors[e])])
                e += 1
            }
            compValue[c] = acc
        }
        component = g.component
        self.compValue = compValue
    }

    /// The component of each block, and each component's value.
    private let component: [Int32]
    private let compValue: [Int32]

    static func join(_ a: Int32, _ b: Int32) -> Int32 {
        if a == CallReach.many || b == CallReach.many { return CallReach.many }
        if a == CallReach.resident { return b }
        if b == CallReach.resident || a == b { return a }
        return CallReach.many
    }

    /// The block graph condensed into strongly connected components: what does not depend
    /// on the clustering, so a session finds it once.
    struct Graph: Sendable {
        var componentCount: Int { memberStart.count - 1 }
        /// Component of each block; components are numbered successors first.
        let component: [Int32]
        /// Blocks of component c: members[memberStart[c] ..< memberStart[c + 1]].
        let memberStart: [Int32]
        let members: [Int32]
        /// Whether a block of the component reaches code nobody can follow (a call
        /// through a pointer, an unresolved jump, a function that returns twice).
        let unresolved: [Bool]
        /// Components the component's edges leave for (each numbered before it).
        let successorStart: [Int32]
        let successors: [Int32]

        init(program p: Program) {
            let n = p.blockCount
            // Successors, and the blocks no one can follow.
            var opaque = [Bool](repeating: false, count: n)
            var twice = [Bool](repeating: false, count: p.functions.count)
            for (i, f) in p.functions.enumerated() where CallReach.returnsTwice.contains(f.name) || f.aliases.contains(where: CallReach.returnsTwice.contains) {
                twice[i] = true
            }
            var succStart = [Int32](repeating: 0, count: n + 1)
            var succ: [Int32] = []
            succ.reserveCapacity(n * 2)
            for b in 0..<n {
                opaque[b] = twice[Int(p.blockFunction[b])]
                let end = p.blockStart[b] + UInt64(p.blockSize[b])
                if p.blockContinues[b] {
                    if b + 1 < n && p.blockStart[b + 1] == end { succ.append(Int32(b + 1)) }
                    else if let nb = p.block(startingAt: end) { succ.append(Int32(nb)) }
                    else { opaque[b] = true }
                }
                switch p.blockKind[b] {
                case .jump, .conditionalJump, .call:
                    if p.blockTarget[b] >= 0 { succ.append(p.blockTarget[b]) } else { opaque[b] = true }
                case .indirectJump:
                    if let ts = p.jumpTableTargets[Int32(b)] { succ.append(contentsOf: ts) } else { opaque[b] = true }
                case .indirectCall, .far:
                    opaque[b] = true
                case .fallThrough, .ret, .stop:
                    break
                }
                succStart[b + 1] = Int32(succ.count)
            }

            // Tarjan's algorithm without recursion. Components come out successors first.
            var index = [Int32](repeating: -1, count: n)
            var low = [Int32](repeating: 0, count: n)
            var onStack = [Bool](repeating: false, count: n)
            var stack: [Int32] = []
            var component = [Int32](repeating: -1, count: n)
            var memberStart: [Int32] = [0], members: [Int32] = [], unresolved: [Bool] = []
            var successorStart: [Int32] = [0], successors: [Int32] = []
            var lastFrom = [Int32](repeating: -1, count: n)  // the component that last listed one
            var next: Int32 = 0
            var frames: [(node: Int32, edge: Int32)] = []
            for root in 0..<n where index[root] < 0 {
                frames.append((Int32(root), succStart[root]))
                index[root] = next; low[root] = next; next += 1
                stack.append(Int32(root)); onStack[root] = true
                while let top = frames.last {
                    let v = Int(top.node)
                    if top.edge < succStart[v + 1] {
                        frames[frames.count - 1].edge += 1
                        let w = Int(succ[Int(top.edge)])
                        if index[w] < 0 {
                            index[w] = next; low[w] = next; next += 1
                            stack.append(Int32(w)); onStack[w] = true
                            frames.append((Int32(w), succStart[w]))
                        } else if onStack[w] {
                            low[v] = min(low[v], index[w])
                        }
                        continue
                    }
                    frames.removeLast()
                    if let parent = frames.last { low[Int(parent.node)] = min(low[Int(parent.node)], low[v]) }
                    guard low[v] == index[v] else { continue }
                    // v roots a component: pop it; its edges leave for components
                    // numbered already.
                    let c = Int32(memberStart.count - 1)
                    var isOpaque = false
                    let first = members.count
                    while true {
                        let w = stack.removeLast()
                        onStack[Int(w)] = false
                        component[Int(w)] = c
                        members.append(w)
                        isOpaque = isOpaque || opaque[Int(w)]
                        if Int(w) == v { break }
                    }
                    for w in members[first...] {
                        for e in succStart[Int(w)]..<succStart[Int(w) + 1] {
                            let sc = component[Int(succ[Int(e)])]
                            if sc != c && lastFrom[Int(sc)] != c { lastFrom[Int(sc)] = c; successors.append(sc) }
                        }
                    }
                    memberStart.append(Int32(members.count))
                    unresolved.append(isOpaque)
                    successorStart.append(Int32(successors.count))
                }
            }
            self.component = component
            self.memberStart = memberStart
            self.members = members
            self.unresolved = unresolved
            self.successorStart = successorStart
            self.successors = successors
        }
    }

    /// Whether a call from `unit` (≥ 1) to the block `target` keeps `unit` in the buffer
    /// until it returns.
    func staysIn(_ unit: Int, callingBlock target: Int) -> Bool {
        let v = compValue[Int(component[target])]
        return v == CallReach.resident || v == Int32(unit)
    }
}
