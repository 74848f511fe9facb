import Foundation
import OvlCore

// ovl-fuzz: an in-process mutation fuzzer over every parser of outside input. Each target
// takes seeds from the samples, mutates them and runs its parser many times per process;
// an OvlError is the expected outcome for bad input, anything else (a trap, a signal) is
// a crash: the input is written to the crash directory and the process exits 1.
//
//   ovl-fuzz [--seconds N] [--target NAME] [--crashes DIR] [--seed S]

struct Options {
    var seconds = 10.0
    var targets: [String] = []
    var crashes = "fuzz-crashes"
    var seed: UInt64 = UInt64(UInt32(truncatingIfNeeded: time(nil)))
    var root = FileManager.default.currentDirectoryPath
}

var opt = Options()
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--seconds": opt.seconds = Double(args.next() ?? "") ?? opt.seconds
    case "--target": opt.targets.append(args.next() ?? "")
    case "--crashes": opt.crashes = args.next() ?? opt.crashes
    case "--seed": opt.seed = UInt64(args.next() ?? "") ?? opt.seed
    case "--root": opt.root = args.next() ?? opt.root
    default:
        FileHandle.standardError.write(Data("usage: ovl-fuzz [--seconds N] [--target elf|rewrite|trace|qemu|fdata|toml] [--crashes DIR] [--seed S] [--root REPO]\n".utf8))
        exit(2)
    }
}

/// xorshift64*: fast, reproducible from --seed.
struct Rng {
    var s: UInt64
    mutating func next() -> UInt64 { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s &* 2685821657736338717 }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

// The input being run, kept in C memory so the crash handler can write it out.
nonisolated(unsafe) var currentInput = UnsafeMutableRawPointer.allocate(byteCount: 16 << 20, alignment: 8)
nonisolated(unsafe) var currentLength = 0
nonisolated(unsafe) var crashPath: UnsafeMutablePointer<CChar>? = nil

func installCrashHandler() {
    for sig in [SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGTRAP] {
        signal(sig) { sig in
            if let p = crashPath {
                let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                if fd >= 0 { _ = write(fd, currentInput, currentLength); close(fd) }
            }
            let msg = "ovl-fuzz: CRASH (signal \(sig)); input saved\n"
            _ = msg.withCString { write(2, $0, strlen($0)) }
            _exit(1)
        }
    }
}

/// Mutations in the style of AFL's havoc stage, several stacked per input.
func mutate(_ seed: [UInt8], _ r: inout Rng, splice other: [UInt8]) -> [UInt8] {
    var b = seed
    let interesting: [UInt64] = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fff_ffff, 0xffff_ffff, 0x1_0000_0000, .max, .max - 1, 1 << 63]
    for _ in 0..<(1 + r.below(8)) {
        if b.isEmpty { b = [UInt8(truncatingIfNeeded: r.next())]; continue }
        switch r.below(10) {
        case 0: b[r.below(b.count)] ^= UInt8(1 << r.below(8))
        case 1: b[r.below(b.count)] = UInt8(truncatingIfNeeded: r.next())
        case 2:  // an interesting little-endian value of 1, 2, 4 or 8 bytes
            let w = [1, 2, 4, 8][r.below(4)]
            guard b.count >= w else { continue }
            let at = r.below(b.count - w + 1), v = interesting[r.below(interesting.count)]
            for k in 0..<w { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        case 3:  // add or subtract a little
            let at = r.below(b.count)
            b[at] = b[at] &+ UInt8(truncatingIfNeeded: r.below(70) - 35)
        case 4:  // delete a run
            let at = r.below(b.count), n = min(b.count - at, 1 + r.below(64))
            b.removeSubrange(at..<(at + n))
        case 5:  // duplicate a run
            let at = r.below(b.count), n = min(b.count - at, 1 + r.below(64))
            b.insert(contentsOf: b[at..<(at + n)], at: r.below(b.count + 1))
        case 6:  // an ASCII number or token that text parsers care about
            let tokens = ["18446744073709551615", "ffffffffffffffff", "-1", "0x", "[", "]", "=", "\"", "'''", "\n", " ", "0", "1e308", "nan", "#", "\0", "Trace 0: ", "no_lbr\n"]
            let t = Array(tokens[r.below(tokens.count)].utf8)
            b.insert(contentsOf: t, at: r.below(b.count + 1))
        case 7:  // splice with another seed
            guard !other.isEmpty else { continue }
            let at = r.below(b.count), from = r.below(other.count), n = min(other.count - from, 1 + r.below(256))
            b.replaceSubrange(at..<min(b.count, at + n), with: other[from..<(from + n)])
        case 8:  // truncate
            b.removeLast(r.below(min(b.count, 256)) + 1)
        default:  // overwrite a run with one byte
            let at = r.below(b.count), n = min(b.count - at, 1 + r.below(32))
            let v = UInt8(truncatingIfNeeded: r.next())
            for k in at..<(at + n) { b[k] = v }
        }
        if b.count > 8 << 20 { b.removeLast(b.count - (8 << 20)) }
    }
    return b
}

struct Target {
    let name: String
    let seeds: [[UInt8]]
    /// Runs one input; throwing OvlError is a clean rejection.
    let run: ([UInt8]) throws -> Void
}

let root = opt.root
func file(_ p: String) -> [UInt8] { (FileManager.default.contents(atPath: root + "/" + p)).map { [UInt8]($0) } ?? [] }

// A program the profile targets resolve against, and a scratch file they read from.
let crcPath = root + "/Samples/bin/crc"
guard let crc = try? Program.load(path: crcPath) else {
    FileHandle.standardError.write(Data("ovl-fuzz: cannot load \(crcPath); give --root REPO\n".utf8))
    exit(2)
}
let crcChains = Chains(program: crc, granularity: .block)
let scratch = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()) + "/ovl-fuzz-\(getpid())"
defer { unlink(scratch) }

func loadProfile(_ bytes: [UInt8]) throws {
    let fd = open(scratch, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    _ = try ProfileLoader.load(path: scratch, program: crc, chains: crcChains, showProgress: false)
}

// Seeds made from the samples: QEMU log lines and .fdata records of crc's real functions.
let fns = crc.functions.filter { !$0.isGap && $0.size > 0 }
var qemuSeed = ""
for (i, f) in fns.prefix(60).enumerated() {
    qemuSeed += "Trace 0: 0x7f30\(String(i, radix: 16)) [0000000000000000/\(String(format: "%016llx", f.address))/1040c0b3/00000200] \(f.name)\n"
}
var fdataSeed = ""
for (a, b) in zip(fns.prefix(40), fns.dropFirst().prefix(40)) { fdataSeed += "1 \(a.name) 0 1 \(b.name) 0 0 \(a.size * 3 + 1)\n" }
var noLBRSeed = "no_lbr\n"
for f in fns.prefix(40) { noLBRSeed += "1 \(f.name) 0 \(f.size)\n" }

/// A short, valid ovl trace: the first `n` addresses of a committed trace, written again.
func shortTrace(_ name: String, _ n: Int) -> [UInt8] {
    var pcs: [UInt64] = []
    guard let stream = try? ByteStream(path: root + "/Samples/bin/" + name) else { return [] }
    try? TraceFile.read(stream, header: { _ in }, sink: { if pcs.count < n { pcs.append($0) } })
    let path = scratch + ".seed"
    defer { unlink(path) }
    guard let w = try? TraceFile.Writer(path: path, codeHash: TraceFile.codeHash(of: crc.elf), imageName: "crc", commandLine: "seed") else { return [] }
    for pc in pcs { w.append(pc) }
    guard (try? w.close()) != nil else { return [] }
    return (FileManager.default.contents(atPath: path)).map { [UInt8]($0) } ?? []
}
let traces = [shortTrace("crc.small.trace", 400), shortTrace("crc.badsum.trace", 150)].filter { !$0.isEmpty }
let elfSeeds = ["Samples/bin/crc", "Samples/bin/fnptr", "Samples/bin/deepchain"].map(file)

let all: [Target] = [
    Target(name: "elf", seeds: elfSeeds) { b in
        let elf = try ELFFile(path: "input", bytes: b)
        _ = try Program.build(elf: elf)
    },
    Target(name: "rewrite", seeds: elfSeeds) { b in
        // What the rewriter reads of an image before it lays anything out.
        let elf = try ELFFile(path: "input", bytes: b)
        try Rewriter.check(elf)
    },
    Target(name: "trace", seeds: traces, run: loadProfile),
    Target(name: "qemu", seeds: [Array(qemuSeed.utf8)], run: loadProfile),
    Target(name: "fdata", seeds: [Array(fdataSeed.utf8), Array(noLBRSeed.utf8)], run: loadProfile),
    Target(name: "toml", seeds: [Array(Config().toml(comment: "seed").utf8), file("Samples/linux/linux.toml")].filter { !$0.isEmpty }) { b in
        _ = try Config.parse(String(decoding: b, as: UTF8.self), path: "input")
    },
]

let chosen = opt.targets.isEmpty ? all : all.filter { opt.targets.contains($0.name) }
guard !chosen.isEmpty else { FileHandle.standardError.write(Data("ovl-fuzz: no such target\n".utf8)); exit(2) }
try? FileManager.default.createDirectory(atPath: opt.crashes, withIntermediateDirectories: true)
installCrashHandler()
var rng = Rng(s: opt.seed | 1)
let perTarget = opt.seconds / Double(chosen.count)
print("ovl-fuzz: seed \(opt.seed), \(String(format: "%.0f", perTarget)) s per target")
print("target      execs    execs/s  rejected  slowest input / seeds (median of 5)")
for t in chosen {
    let path = opt.crashes + "/crash-\(t.name)-\(opt.seed)"
    free(crashPath)
    crashPath = strdup(path)
    // The seeds' median time: the yardstick for slow inputs.
    func median(_ input: [UInt8]) -> Double {
        var times: [Double] = []
        for _ in 0..<5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try? t.run(input)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0))
        }
        return times.sorted()[2]
    }
    let seedTime = t.seeds.map(median).reduce(0, +) / Double(max(1, t.seeds.count))
    var execs = 0, rejected = 0
    var slowest = 0.0
    var slowestInput: [UInt8] = []
    let start = DispatchTime.now().uptimeNanoseconds
    let end = start + UInt64(perTarget * 1e9)
    var now = start
    while now < end {
        let seed = t.seeds[rng.below(t.seeds.count)]
        let input = mutate(seed, &rng, splice: t.seeds[rng.below(t.seeds.count)])
        input.withUnsafeBytes { currentInput.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        currentLength = input.count
        let t0 = DispatchTime.now().uptimeNanoseconds
        do { try t.run(input) } catch is OvlError { rejected += 1 } catch {
            FileHandle.standardError.write(Data("ovl-fuzz: \(t.name): a non-OvlError error: \(error)\n".utf8))
        }
        now = DispatchTime.now().uptimeNanoseconds
        if Double(now - t0) > slowest { slowest = Double(now - t0); slowestInput = input }
        execs += 1
    }
    let secs = Double(now - start) / 1e9
    // A single slow run may be the machine pausing: time the slowest input again.
    let slowestAgain = median(slowestInput)
    print(String(format: "%-8@ %9d %10.0f %9d %10.1f×", t.name as NSString, execs, Double(execs) / secs, rejected, slowestAgain / max(seedTime, 1)))
}
