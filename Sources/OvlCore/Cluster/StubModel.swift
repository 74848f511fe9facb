/// Figure 1 (BlockSize) in numbers: how many bytes a transfer grows by when it leaves its
/// cluster, as the paper charges it and as Figure 2 (the coalescer) and the affinity layout
/// size clusters with. The rewriter writes other sequences (transfers keep their size and go
/// through thunks, the cluster's own, or shared resident ones where a cluster's own would
/// outgrow the buffer); the cost model weighs loads by the bytes it really writes
/// (`MemoryAccount.clusterBytes`). The paper's sequences:
///
/// - `jmp L` to a cluster becomes `push $L; jmp _dynamic_jmp` (5 + 5 bytes).
/// - `jcc L` becomes `jcc.rel32 A` in place and `A: push $L; jmp _dynamic_jmp` out of line
///   (6 + 10 bytes).
/// - `call f` becomes `push $f; call _dynamic_call` (5 + 5 bytes).
/// - `jmp *x` / `call *x` become `push x; jmp _dynamic_jmp` / `push x; call _dynamic_call`:
///   `push x` is as long as the original, plus a rel32 transfer (5 bytes).
public enum StubModel {
    public static let jumpStubBytes = 10
    public static let conditionalStubBytes = 16
    public static let callStubBytes = 10
    public static let indirectOverhead = 5

    /// Bytes a transfer of `kind` (its instruction `length` bytes long) adds when it
    /// crosses clusters (or, for indirect transfers, always).
    public static func overhead(_ kind: TransferKind, length: Int) -> Int {
        switch kind {
        case .jump: return max(0, jumpStubBytes - length)
        case .conditionalJump: return max(0, conditionalStubBytes - length)
        case .call: return max(0, callStubBytes - length)
        case .indirectJump, .indirectCall, .far: return indirectOverhead
        case .fallThrough, .ret, .stop: return 0
        }
    }

    // The overlay manager's own memory (its code, tables and return stack) is not a
    // constant here: `MemoryAccount` measures it on the rewriter's layout.
}
