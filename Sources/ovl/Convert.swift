import ArgumentParser
import Foundation
import OvlCore

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Turn a QEMU -d exec log into ovl's compact trace, optionally split into phases.",
        discussion: """
            The log is read as a stream (a file, a named pipe, or - for standard input), so a \
            qemu-system-x86_64 boot can be converted while it runs:

              mkfifo log; qemu-system-x86_64 ... -d exec,nochain -D log &
              ovl convert log --image vmlinux -o boot.trace \\
                  --split-at 0x401a30 -o workload.trace

            With --split-at, addresses before the first execution of ADDR go to the first \
            output and the rest to the second (the marker is typically a function of the \
            workload's own program, which lies outside the image and is otherwise set aside).
            """)

    @Argument(help: "The QEMU exec log (`-` for standard input).", completion: .file())
    var log: String

    @Option(help: ArgumentHelp("The image the log was taken of (its code hash goes into the trace).", valueName: "elf"), completion: .file())
    var image: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output trace; give twice with --split-at.", valueName: "trace"), completion: .file())
    var output: [String] = []

    @Option(help: ArgumentHelp("Start the second output at the first execution of this address (hex).", valueName: "addr"))
    var splitAt: String?

    @Flag(help: "Never draw a progress line.")
    var noProgress = false

    func run() throws {
        try guarded {
            var split: UInt64? = nil
            if let s = splitAt {
                let t = s.hasPrefix("0x") ? String(s.dropFirst(2)) : s
                guard let v = UInt64(t, radix: 16) else { throw OvlError("--split-at must be a hex address, not '\(s)'") }
                split = v
            }
            guard output.count == (split == nil ? 1 : 2) else {
                throw OvlError(split == nil ? "convert needs one -o TRACE" : "--split-at needs two outputs: -o FIRST -o SECOND")
            }
            try OutputFile.check(outputs: output.map { ("-o", $0) }, inputs: [("the log", log), ("the image", image)])
            let elf = try ELFFile(path: image)
            let hash = TraceFile.codeHash(of: elf)
            let name = (image as NSString).lastPathComponent
            var writers = try output.map { try TraceFile.Writer(path: $0, codeHash: hash, imageName: name, commandLine: "converted from \(log)") }
            var current = 0
            do {
                let stream = try ByteStream(path: log)
                let progress = Progress("converting \(log == "-" ? "standard input" : log)", total: stream.totalSize,
                                        enabled: !noProgress && Progress.stderrIsTerminal)
                _ = try QEMULogParser.parseInTwoStages(stream, progress: progress) { pcs in
                    var rest = pcs
                    if current == 0, let s = split, let at = pcs.firstIndex(of: s) {
                        // The split address's first run: it and what follows go to the second output.
                        writers[0].append(contentsOf: UnsafeBufferPointer(rebasing: pcs[..<at]))
                        rest = UnsafeBufferPointer(rebasing: pcs[at...])
                        current = 1
                    }
                    writers[current].append(contentsOf: rest)
                }
                progress.finish()
                if split != nil && current == 0 {
                    throw OvlError("\(log): the split address \(splitAt!) never ran; nothing for the second output")
                }
                guard writers[0].count > 0 else { throw OvlError.file(log, "holds no QEMU trace lines") }
                for w in writers { try w.close() }
                writers.removeAll()
            } catch {
                for w in writers { w.discard() }
                throw error
            }
        }
    }
}
