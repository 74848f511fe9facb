import CHints

/// Memory for large arrays read at random: the coalescer's nodes, records and pair table
/// (155 MB at a million chains), kept from run to run (`CoalescerMemory`). Blocks of 4 MB
/// or more ask to be backed by huge pages (`ovl_advise_huge`; Debian's kernels give them
/// to regions that ask): with 4 KB pages nearly every random access also missed the TLB
/// (the synthetic million-chain run 6-7% slower in turn with the same binary). Not for
/// memory read front to back or filled once: the kept states' copies (with huge pages the
/// first run at a million chains took 2.0-2.2 s instead of 1.2-1.3 s: on this VM fresh
/// huge pages cost far more to come by than the pages malloc hands back), nor a long
/// trace's chain runs and segments (`ovl analyze` was no faster with them). `huge: false`
/// gives plain memory. Freed with `deallocate()` as any other.
enum LargeMemory {
    static let hugeAbove = 4 << 20
    static let hugePage = 2 << 20

    static func allocate(byteCount: Int, huge: Bool = true) -> UnsafeMutableRawPointer {
        guard huge && byteCount >= hugeAbove else { return .allocate(byteCount: byteCount, alignment: 64) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: hugePage)
        ovl_advise_huge(p, byteCount)
        return p
    }

    static func allocate<T>(_ count: Int, of: T.Type, huge: Bool = true) -> UnsafeMutablePointer<T> {
        allocate(byteCount: count * MemoryLayout<T>.stride, huge: huge).bindMemory(to: T.self, capacity: count)
    }
}
