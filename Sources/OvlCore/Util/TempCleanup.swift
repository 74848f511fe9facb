import Foundation

/// Removes the one temporary directory a run has open (the overlay manager's build
/// directory) when the process dies of a signal: SIGTERM, SIGHUP, SIGQUIT, or a crash
/// (SIGILL from a Swift runtime trap, SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGTRAP). The
/// handler only unlinks the directory's known files and the directory, with paths
/// prepared beforehand, then hands the signal on to whatever handled it before (the
/// Swift runtime's backtracer, or the default action).
enum TempCleanup {
    /// The files the manager's tools write; the directory is removed after them.
    static let fileNames = ["manager.c", "manager.o", "rules.o", "manager.ld", "manager.elf"]
    static let signals: [Int32] = [SIGTERM, SIGHUP, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV]

    // Plain C storage, written only outside the handler while no directory is registered.
    nonisolated(unsafe) private static var paths = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 8)
    nonisolated(unsafe) private static var pathCount: sig_atomic_t = 0
    nonisolated(unsafe) private static var previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
    nonisolated(unsafe) private static var installed = false

    static func register(_ dir: String) {
        unregister()
        install()
        var n: Int32 = 0
        for name in fileNames { paths[Int(n)] = strdup(dir + "/" + name); n += 1 }
        paths[Int(n)] = strdup(dir); n += 1
        pathCount = n
    }

    static func unregister() {
        let n = Int(pathCount)
        pathCount = 0
        for i in 0..<n { free(paths[i]); paths[i] = nil }
    }

    private static func install() {
        guard !installed else { return }
        installed = true
        for sig in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { sig, info, _ in
                // Async-signal-safe: unlink, rmdir, sigaction, raise.
                let n = Int(TempCleanup.pathCount)
                TempCleanup.pathCount = 0
                if n > 0 {
                    for i in 0..<(n - 1) { if let p = TempCleanup.paths[i] { unlink(p) } }
                    if let d = TempCleanup.paths[n - 1] { rmdir(d) }
                }
                sigaction(sig, TempCleanup.previous + Int(sig), nil)
                // A fault raised by the processor happens again on return, now reaching the
                // previous handler with its real context; a signal sent by a process is re-sent.
                let sent = info.map { $0.pointee.si_code <= 0 } ?? true
                let fault = sig == SIGILL || sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGTRAP
                if sent || !fault { raise(sig) }
            }
            action.sa_flags = SA_SIGINFO | SA_NODEFER
            sigemptyset(&action.sa_mask)
            sigaction(sig, &action, previous + Int(sig))
        }
    }
}
