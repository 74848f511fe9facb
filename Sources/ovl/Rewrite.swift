import ArgumentParser
import Foundation
import OvlCore

struct Rewrite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite",
        abstract: "Write a runnable overlaid image: resident code, overlay clusters and the overlay manager.",
        discussion: """
        The image must be a static, non-PIE x86-64 executable linked with -Wl,--emit-relocs. \
        Run the result as the original; with OVL_STATS=FILE in its environment it writes the \
        overlay manager's load counters to FILE as JSON when it exits. \
        A Linux vmlinux (x86-64, one CPU, CONFIG_PVH, relocations kept) is written as an \
        overlaid kernel that boots with qemu-system-x86_64 -kernel OUT; it prints its load \
        counters on the console at sync() and at restart.
        """)

    @OptionGroup var options: ImageOptions

    @Option(name: .shortAndLong, help: ArgumentHelp("The image to write (never the input).", valueName: "file"), completion: .file())
    var output: String

    @Option(help: ArgumentHelp("Overlay store: memory (a separate section, copied) or file (read from the image on demand). Overrides the configuration.", valueName: "backend"), completion: .list(StorageBackend.allCases.map(\.rawValue)))
    var storage: String?

    @Flag(help: "Use the smallest code buffer that holds the largest chain (with --gamma 0: the stress configuration).")
    var smallestBuffer = false

    @Flag(help: "Print what was written as JSON.")
    var json = false

    func run() throws {
        try guarded {
            try OutputFile.check(outputs: [("-o", output)], inputs: options.inputFiles)
            let backend: StorageBackend?
            if let st = storage {
                guard let v = StorageBackend(rawValue: st) else { throw OvlError("--storage must be memory or file, not '\(st)'") }
                backend = v
            } else { backend = nil }
            let elf = try ELFFile(path: options.image)
            if KernelRewriter.isKernel(elf) { try KernelRewriter.check(elf) } else { try Rewriter.check(elf) }
            let s = try options.openSession()
            if smallestBuffer {
                var cfg = s.config
                cfg.bufferSize = Rewriter.smallestBuffer(s)
                try s.update(cfg)
            }
            let c = s.cluster(recordEvents: false)
            let r = try Rewriter.rewrite(session: s, clustering: c, storage: backend)
            try writeAtomically(Data(r.image), to: output, inputs: options.inputFiles.map(\.path))
            chmod(output, 0o755)
            var summary = RewriteSummary(r)
            if r.kernelPinned != nil {
                // What the cost model predicts for the clustering the kernel was written
                // with (functions kept whole and pinned): the kernel's own counters
                // (`ovl: mark`/`ovl: end` console lines) are compared with these.
                // Beside it: demand paging of the original layout in the memory the
                // written kernel occupies.
                let model = CostModel(session: s)
                summary.predicted = s.profiles.map { prof in
                    let loads = CostModel.replay(CostModel.compact(prof), chainCluster: r.chainCluster, clusters: r.clusterCount, buffers: 1)
                    var bytes = 0
                    for k in 0..<r.clusterCount { bytes += Int(loads[k]) * r.clusterBytes[k] }
                    let paging = model.paging(prof, totalMemory: r.totalMemoryBytes)
                    return RewriteSummary.Predicted(profile: prof.name, loads: Int(loads.reduce(0, +)), bytesLoaded: bytes,
                                                    pagingLoads: Int(paging.loads), pageSize: paging.pageSize)
                }
            }
            if json { try printJSON(summary); return }
            var out = "wrote \(output): \(Describe.count(r.clusterCount, "cluster")) (\(Describe.count(r.storeBytes)) B in the \(backend ?? s.config.storage) store), "
            out += "resident code \(Describe.count(r.residentCodeBytes)) B (manager \(r.managerCodeBytes), thunks \(r.thunkBytes), text \(r.residentTextBytes)), "
            out += "buffer \(Describe.count(r.bufferBytes)) B, total memory \(Describe.count(r.totalMemoryBytes)) B against \(Describe.count(r.originalTextBytes)) B of code; "
            out += "\(Describe.count(r.directCallsFromBuffer)) calls in clusters go straight to callees that cannot unload them\n"
            for p in summary.predicted ?? [] {
                out += "model: \(p.profile): \(Describe.count(p.loads)) loads, \(Describe.count(p.bytesLoaded)) B loaded; demand paging of the original layout in the same memory: \(Describe.count(p.pagingLoads)) loads of \(p.pageSize) B pages\n"
            }
            if let n = r.kernelPinned {
                out += "kernel: \(Describe.count(n)) functions kept resident (tables, alternatives, special text, the manager's callees); boot it with qemu-system-x86_64 -kernel \(output) (PVH)\n"
                for r in r.kernelPinReasons { out += "  \(Describe.count(r.functions)) function\(r.functions == 1 ? "" : "s"), \(Describe.count(r.bytes)) B: \(r.reason)\n" }
                for note in r.kernelNotes { out += "kept resident: \(note)\n" }
            }
            if !r.demotedClusters.isEmpty {
                out += "kept resident (rewritten code outgrew the buffer): clusters \(r.demotedClusters.map(String.init).joined(separator: ", "))\n"
            }
            print(out, terminator: "")
        }
    }
}

struct RewriteSummary: Encodable {
    var clusters: Int
    var clusterBytes: [Int]
    var demotedClusters: [Int]
    var residentCodeBytes: Int
    var managerCodeBytes: Int
    var thunkBytes: Int
    var residentTextBytes: Int
    var managerDataBytes: Int
    var bufferBytes: Int
    var storeBytes: Int
    var totalMemoryBytes: Int
    var originalTextBytes: Int
    var directCallsFromBuffer: Int
    /// A kernel: functions kept resident because they cannot move, and the model's loads
    /// per profile for the clustering written.
    var kernelPinnedFunctions: Int?
    var kernelPinReasons: [RewriteResult.PinReason]?
    var predicted: [Predicted]?
    struct Predicted: Encodable { var profile: String; var loads: Int; var bytesLoaded: Int; var pagingLoads: Int; var pageSize: Int }

    init(_ r: RewriteResult) {
        kernelPinnedFunctions = r.kernelPinned
        kernelPinReasons = r.kernelPinned == nil ? nil : r.kernelPinReasons
        clusters = r.clusterCount; clusterBytes = r.clusterBytes; demotedClusters = r.demotedClusters
        residentCodeBytes = r.residentCodeBytes; managerCodeBytes = r.managerCodeBytes; thunkBytes = r.thunkBytes
        residentTextBytes = r.residentTextBytes; managerDataBytes = r.managerDataBytes; bufferBytes = r.bufferBytes
        storeBytes = r.storeBytes; totalMemoryBytes = r.totalMemoryBytes; originalTextBytes = r.originalTextBytes
        directCallsFromBuffer = r.directCallsFromBuffer
    }
}
