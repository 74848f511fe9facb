import Foundation

/// Parses QEMU's `-d exec` log: one line per translation block executed,
///
///     Trace 0: 0x7f9884000240 [0000000000000000/0000000000401070/1040c0b3/00000200] _start_c
///
/// where the second field inside the brackets is the guest pc. Other lines (QEMU's own
/// messages, the guest's output when it shares the stream) are skipped and counted.
public struct QEMULogParser {
    /// Bytes of a line that was cut by the end of the previous chunk.
    private var carry: [UInt8] = []
    public private(set) var lines: UInt64 = 0
    public private(set) var otherLines: UInt64 = 0

    public init() {}

    static let hexValue: [UInt8] = {
        var t = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in "0123456789abcdef".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        for (i, c) in "ABCDEF".utf8.enumerated() { t[Int(c)] = UInt8(10 + i) }
        return t
    }()

    /// Parses the complete lines of `chunk` and calls `sink` with each pc. A line cut at
    /// the end of the chunk is kept for the next call; `finish` parses what is left.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, sink: (UInt64) -> Void) {
        guard chunk.count > 0 else { return }
        var start = 0
        let base = chunk.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if !carry.isEmpty {
            // Complete the carried line with the start of this chunk.
            guard let nl = memchr(base, 0x0a, chunk.count) else {
                carry.append(contentsOf: UnsafeBufferPointer(start: base, count: chunk.count))
                return
            }
            let n = UnsafeRawPointer(nl) - UnsafeRawPointer(base)
            carry.append(contentsOf: UnsafeBufferPointer(start: base, count: n))
            carry.withUnsafeBufferPointer { parseLine($0.baseAddress!, $0.count, sink) }
            carry.removeAll(keepingCapacity: true)
            start = n + 1
        }
        while start < chunk.count {
            let p = base + start
            guard let nl = memchr(p, 0x0a, chunk.count - start) else {
                carry.append(contentsOf: UnsafeBufferPointer(start: p, count: chunk.count - start))
                return
            }
            let len = UnsafeRawPointer(nl) - UnsafeRawPointer(p)
            parseLine(p, len, sink)
            start += len + 1
        }
    }

    public mutating func finish(sink: (UInt64) -> Void) {
        if !carry.isEmpty {
            carry.withUnsafeBufferPointer { parseLine($0.baseAddress!, $0.count, sink) }
            carry.removeAll()
        }
    }

    @inline(__always)
    private mutating func parseLine(_ p: UnsafePointer<UInt8>, _ len: Int, _ sink: (UInt64) -> Void) {
        lines += 1
        // "Trace " then "N: 0x... [cs_base/pc/flags/cflags]".
        guard len > 12, p[0] == 0x54, p[1] == 0x72, p[2] == 0x61, p[3] == 0x63, p[4] == 0x65, p[5] == 0x20,
              let lb = memchr(p + 6, 0x5b, len - 6) else { otherLines += 1; return }
        var i = UnsafePointer<UInt8>(lb.assumingMemoryBound(to: UInt8.self)) - p + 1
        while i < len && p[i] != 0x2f { i += 1 }  // skip cs_base up to '/'
        i += 1
        var pc: UInt64 = 0
        var digits = 0
        let table = QEMULogParser.hexValue
        while i < len {
            let v = table[Int(p[i])]
            if v == 0xff { break }
            pc = pc << 4 | UInt64(v)
            digits += 1
            i += 1
        }
        guard digits > 0, i < len, p[i] == 0x2f else { otherLines += 1; return }
        sink(pc)
    }
}
