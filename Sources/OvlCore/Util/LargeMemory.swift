import CHints

/// Memory for large arrays read at random: the coalescer's nodes, records and pair table
/// (155 MB at a million chains), kept from run to run (`CoalescerMemory`). Blocks of 4 MB
/// or more ask to be backed by huge pages (`ovl_advise_huge`; Debian's kernels give them
/// to regions that ask): with 4 KB pages nearly every random access also missed the TLB
/// (the synthetic million-chain run 6-7% slower in turn with the same binary). Not for
/// arrays filled once and dropped: a long trace's chain runs and segments asked for them
/// too, and `ovl analyze` was no faster (on this VM a first touch costs per 4 KB page
/// either way, and a huge page is cleared whole). Freed with `deallocate()` as any other.
enum LargeMemory {
    static let hugeAbove = 4 << 20
    static let hugePage = 2 << 20

    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        guard byteCount >= hugeAbove else { return .allocate(byteCount: byteCount, alignment: 64) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: hugePage)
        ovl_advise_huge(p, byteCount)
        return p
    }

    static func allocate<T>(_ count: Int, of: T.Type) -> UnsafeMutablePointer<T> {
        allocate(byteCount: count * MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: count)
    }
}
