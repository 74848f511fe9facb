/// Counts per key in flat arrays: open addressing with linear probing, grown at half
/// full, no deletion. For the loops that see every address of a trace (transfers between
/// chains while a profile is read, pairs of addresses while a trace is written): a Swift
/// dictionary hashes each key with a seeded hasher, which costs more than the rest of
/// such a loop.
struct CountTable<Key: CountKey> {
    private var keys: [Key]
    private var counts: [UInt64]   // 0: an empty slot
    private(set) var count = 0

    /// `capacity` (a power of two) slots to start with; 0 makes a placeholder that must
    /// not be added to.
    init(capacity: Int = 1 << 12) {
        keys = [Key](repeating: Key.none, count: capacity)
        counts = [UInt64](repeating: 0, count: capacity)
    }

    @inline(__always)
    private static func home(_ key: Key, _ mask: Int) -> Int { Int(truncatingIfNeeded: key.mix >> 32) & mask }

    /// Adds `n` (at least 1) to `key`'s count.
    @inline(__always)
    mutating func add(_ key: Key, _ n: UInt64 = 1) {
        let mask = counts.count - 1
        var i = CountTable.home(key, mask)
        while counts[i] != 0 {
            if keys[i] == key { counts[i] &+= n; return }
            i = (i + 1) & mask
        }
        keys[i] = key
        counts[i] = n
        count += 1
        if count * 2 > counts.count { grow() }
    }

    private mutating func grow() {
        let oldKeys = keys, oldCounts = counts
        let n = oldCounts.count * 2
        keys = [Key](repeating: Key.none, count: n)
        counts = [UInt64](repeating: 0, count: n)
        let mask = n - 1
        for j in 0..<oldCounts.count where oldCounts[j] != 0 {
            var i = CountTable.home(oldKeys[j], mask)
            while counts[i] != 0 { i = (i + 1) & mask }
            keys[i] = oldKeys[j]
            counts[i] = oldCounts[j]
        }
    }

    /// Every key and its count, in no particular order.
    var entries: [(key: Key, count: UInt64)] {
        var out: [(key: Key, count: UInt64)] = []
        out.reserveCapacity(count)
        for j in 0..<counts.count where counts[j] != 0 { out.append((keys[j], counts[j])) }
        return out
    }
}

/// A key of `CountTable`: equality, well-mixed high bits, and a value for empty slots.
protocol CountKey: Equatable {
    var mix: UInt64 { get }
    static var none: Self { get }
}

extension UInt64: CountKey {
    var mix: UInt64 { self &* 0x9E37_79B9_7F4A_7C15 }
    static var none: UInt64 { 0 }
}

/// Two addresses in order: one followed the other in a trace.
struct AddressPair: CountKey {
    var from: UInt64
    var to: UInt64
    var mix: UInt64 { (from &* 0x9E37_79B9_7F4A_7C15) ^ (to &* 0xC2B2_AE3D_27D4_EB4F) }
    static var none: AddressPair { AddressPair(from: 0, to: 0) }
}
