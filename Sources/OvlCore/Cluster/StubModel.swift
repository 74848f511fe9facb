/// Figure 1 (BlockSize) in numbers: how many bytes a transfer grows by when the rewriter
/// sends it through the overlay manager, and the manager's own data. The rewriter emits
/// exactly these sequences, so the estimate and the written image agree.
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

    /// Restore stubs made up front (the paper makes 20 and grows the pool on demand).
    public static let restoreStubCount = 20
    /// One restore stub: the buffer offset to return to and the cluster to reload, with
    /// the call into the loader.
    public static let restoreStubBytes = 16
    /// One cluster address table entry: the cluster's 32-bit start offset in the overlay
    /// store (sizes follow from the next entry, so the table has one extra entry).
    public static let clusterTableEntryBytes = 4
    /// The overlay manager's code: dynamic loader, `_dynamic_call`, `_dynamic_jmp` and the
    /// restore path. An estimate until a rewritten image measures it.
    public static let managerCodeBytes = 640
}
