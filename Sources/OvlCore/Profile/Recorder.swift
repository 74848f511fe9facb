import Foundation

/// `ovl record`: runs a program under `qemu-x86_64 -d exec,nochain`, reads QEMU's log
/// through a pipe as it is written (no temporary log file), and writes ovl's compact
/// trace. The program's standard input, output and error are its own, and its exit
/// status is returned, so the recording can sit in a pipeline.
public enum Recorder {
    public struct Result {
        public var exitStatus: Int32
        public var addresses: UInt64
    }

    /// Finds an executable on PATH.
    public static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    public static func record(output: String, program: String, arguments: [String], qemu: String? = nil) throws -> Result {
        let elf = try ELFFile(path: program)
        if elf.programHeaders.contains(where: { $0.type == ELFFile.PT_INTERP }) {
            throw OvlError.file(program, "is dynamically linked; ovl records static programs (link with -static)")
        }
        guard let qemuPath = qemu ?? which("qemu-x86_64") else {
            throw OvlError("qemu-x86_64 not found on PATH; install it (Debian: apt-get install qemu-user)")
        }
        let writer = try TraceFile.Writer(path: output, codeHash: TraceFile.codeHash(of: elf),
                                          imageName: (program as NSString).lastPathComponent,
                                          commandLine: ([program] + arguments).joined(separator: " "))
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { writer.discard(); throw OvlError("cannot create a pipe for QEMU's log") }
        let (readFD, writeFD) = (fds[0], fds[1])
        // QEMU opens the log by name; /dev/fd/3 in the child is the pipe's write end.
        let argv = [qemuPath, "-d", "exec,nochain", "-D", "/dev/fd/3", program] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, writeFD, 3)
        posix_spawn_file_actions_addclose(&actions, readFD)
        var pid: pid_t = 0
        let cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let rc = posix_spawn(&pid, qemuPath, &actions, nil, cargs, environ)
        close(writeFD)
        guard rc == 0 else {
            close(readFD)
            writer.discard()
            throw OvlError("cannot start \(qemuPath): \(String(cString: strerror(rc)))")
        }
        // While the child runs, Ctrl-C goes to it too (same process group); we keep
        // reading until its log ends.
        var parser = QEMULogParser()
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var pcs: [UInt64] = []
        var readError: Int32 = 0
        while true {
            let n = buf.withUnsafeMutableBytes { read(readFD, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                readError = errno
                break
            }
            if n == 0 { break }
            pcs.removeAll(keepingCapacity: true)
            buf.withUnsafeBytes { raw in parser.feed(UnsafeRawBufferPointer(rebasing: raw[0..<n]), into: &pcs) }
            pcs.withUnsafeBufferPointer { writer.append(contentsOf: $0) }
        }
        pcs.removeAll(keepingCapacity: true)
        parser.finish { pcs.append($0) }
        pcs.withUnsafeBufferPointer { writer.append(contentsOf: $0) }
        close(readFD)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitStatus: Int32
        if status & 0x7f == 0 { exitStatus = (status >> 8) & 0xff } else { exitStatus = 128 + (status & 0x7f) }
        if readError != 0 {
            writer.discard()
            throw OvlError("reading QEMU's log failed: \(String(cString: strerror(readError)))")
        }
        if writer.count == 0 {
            writer.discard()
            throw OvlError("QEMU wrote no trace for \(program) (exit status \(exitStatus)); is \(qemuPath) working?")
        }
        try writer.close()
        return Result(exitStatus: exitStatus, addresses: writer.count)
    }
}
