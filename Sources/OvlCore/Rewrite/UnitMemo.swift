import Foundation

/// What laying out one unit asked of the clustering and left behind in the builder.
///
/// A unit's items depend on its chains (fixed by the key) and on a few questions about the
/// clustering: for each block it refers to, whether that block is in the unit itself or
/// resident; for each call, whether the callee can unload the caller (`CallReach`); for
/// each transfer out, whether the unit has a thunk of its own for it. Asked again of
/// another clustering, the same answers give the same items, so the same layout.
struct UnitTrace {
    enum Query {
        /// The relation of a block's unit to the unit being built.
        case unit(Int32, UInt8)
        case stays(Int32, Bool)
        case local(UInt64, call: Bool, Bool)
    }
    enum Effect {
        case jumpThunk(UInt64)
        case callThunk(UInt64)
        /// A data address a RIP-relative instruction refers to (a jump table's base).
        case ripData(UInt64)
        case directCall
        /// A transfer through a thunk of the unit's own: nothing left behind, but where a
        /// shared thunk would have been asked for (`Builder.sharing`).
        case ownThunk(UInt64, call: Bool)
    }
    var queries: [Query] = []
    /// In the order they happened: thunk numbers follow it.
    var effects: [Effect] = []

    /// Bit 0: `target` is `unit`; bit 1: `target` is resident. Items compare a target's
    /// unit with nothing else.
    static func relation(_ unit: Int, _ target: Int) -> UInt8 {
        (target == unit ? 1 : 0) | (target == 0 ? 2 : 0)
    }
}

/// Units laid out for earlier clusterings of a session, by their chains. The explorer
/// measures every analysis's memory on the rewriter's layout; between two clusterings
/// most clusters keep their chains and everything they refer to, so their layout is
/// taken from here after checking every question it asked (`UnitTrace`).
final class UnitMemo: @unchecked Sendable {
    struct Key: Hashable {
        var inBuffer: Bool
        var chains: [Int32]
    }
    struct Entry {
        let unit: CodeUnit
        let trace: UnitTrace
        /// The last layout (`beginLayout`) that made or took it.
        var used: Int

        /// What an entry counts against the capacity.
        static func weight(_ t: UnitTrace) -> Int { t.queries.count + t.effects.count + 1 }
    }

    /// Layouts kept per key, the newest first: a cluster is laid out with thunks of its
    /// own and then, when that outgrows the buffer, with some shared, and an edit and its
    /// undo go back and forth between two clusterings.
    static let perKey = 4
    /// Questions and effects kept in all, 16 bytes each (a unit keeps its figures and what
    /// it asked, not its items). Beyond it the units no recent layout used are forgotten.
    static let capacity = 600_000

    private var entries: [Key: [Entry]] = [:]
    private var weight = 0
    private var layout = 0
    private let lock = NSLock()
    /// Units taken from here (the tests check that they are).
    private(set) var hits = 0

    /// Starts the layout of another clustering.
    func beginLayout() {
        lock.lock()
        layout += 1
        lock.unlock()
    }

    func candidates(for key: Key) -> [Entry] {
        lock.lock()
        defer { lock.unlock() }
        return entries[key] ?? []
    }

    /// Notes that the `index`th candidate for `key` was taken.
    func took(_ key: Key, _ index: Int) {
        lock.lock()
        defer { lock.unlock() }
        hits += 1
        if var list = entries[key], index < list.count {
            list[index].used = layout
            entries[key] = list
        }
    }

    func remember(_ unit: CodeUnit, trace: UnitTrace, for key: Key) {
        lock.lock()
        defer { lock.unlock() }
        if weight + Entry.weight(trace) > UnitMemo.capacity { forgetOld() }
        var list = entries[key] ?? []
        if list.count >= UnitMemo.perKey { weight -= Entry.weight(list.removeLast().trace) }
        list.insert(Entry(unit: unit, trace: trace, used: layout), at: 0)
        entries[key] = list
        weight += Entry.weight(trace)
    }

    /// Forgets the units neither this layout nor the one before used (an edit and its
    /// undo alternate between two); then, if that is not enough, those this layout has
    /// not used; then all.
    private func forgetOld() {
        for age in [1, 0] where weight > UnitMemo.capacity / 2 {
            for (key, list) in entries {
                let kept = list.filter { $0.used >= layout - age }
                if kept.count == list.count { continue }
                for e in list where e.used < layout - age { weight -= Entry.weight(e.trace) }
                entries[key] = kept.isEmpty ? nil : kept
            }
        }
        if weight > UnitMemo.capacity / 2 {
            entries.removeAll()
            weight = 0
        }
    }

    func removeAll() {
        lock.lock()
        entries.removeAll()
        weight = 0
        lock.unlock()
    }
}
