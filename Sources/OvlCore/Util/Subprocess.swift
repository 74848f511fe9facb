import Foundation

/// Runs a tool and waits for it, its standard output and error read together. Spawned and
/// reaped directly: Foundation's `Process` learns of an exit by polling every 50 ms, which
/// added up to 50 ms to every compiler run of `ovl rewrite`.
enum Subprocess {
    /// `tool` (looked up on PATH) with `arguments`: its exit status and what it printed.
    /// Throws when it cannot be started, with the reason.
    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: Data) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw OvlError("no pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, tool, &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw OvlError(String(cString: strerror(rc)))
        }
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { output.append(contentsOf: buffer[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // Exited normally: its code; killed by a signal: 128 + the signal, as a shell says.
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }
}
