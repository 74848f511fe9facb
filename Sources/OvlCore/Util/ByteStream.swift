import Foundation

/// Reads a file, a named pipe or standard input (`-`) in large chunks, without loading
/// it whole: QEMU logs of a kernel boot run to gigabytes.
public final class ByteStream: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let ownsFD: Bool
    public let totalSize: UInt64?
    public private(set) var bytesRead: UInt64 = 0
    /// Bytes read ahead by `peek` and not yet handed out.
    private var pending: [UInt8] = []

    public init(path: String) throws {
        self.path = path
        if path == "-" {
            fd = 0
            ownsFD = false
        } else {
            fd = open(path, O_RDONLY)
            guard fd >= 0 else {
                throw OvlError.file(path, errno == ENOENT ? "no such file" : "cannot be opened (\(String(cString: strerror(errno))))")
            }
            ownsFD = true
        }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
            totalSize = UInt64(st.st_size)
        } else if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            if ownsFD { close(fd) }
            throw OvlError.file(path, "is a directory")
        } else {
            totalSize = nil
        }
    }

    deinit { if ownsFD { close(fd) } }

    /// The first `n` bytes (or fewer at end of input), without consuming them.
    public func peek(_ n: Int) throws -> [UInt8] {
        while pending.count < n {
            var buf = [UInt8](repeating: 0, count: n - pending.count)
            let got = try readRaw(&buf, 0, buf.count)
            if got == 0 { break }
            pending.append(contentsOf: buf[0..<got])
        }
        return Array(pending.prefix(n))
    }

    /// Fills `buffer[offset...]` with up to `count` bytes; returns how many (0 at end).
    public func read(into buffer: inout [UInt8], at offset: Int, count: Int) throws -> Int {
        if !pending.isEmpty {
            let n = min(count, pending.count)
            buffer.replaceSubrange(offset..<(offset + n), with: pending[0..<n])
            pending.removeFirst(n)
            bytesRead += UInt64(n)
            return n
        }
        let n = try readRaw(&buffer, offset, count)
        bytesRead += UInt64(n)
        return n
    }

    private func readRaw(_ buffer: inout [UInt8], _ offset: Int, _ count: Int) throws -> Int {
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress! + offset, count) }
            if n >= 0 { return n }
            if errno == EINTR {
                try Interrupt.check()
                continue
            }
            throw OvlError.file(path, "read failed (\(String(cString: strerror(errno))))")
        }
    }

    /// Calls `body` with every line that is left (without its newline; a last line
    /// without one counts too) and its 1-based number, reading in chunks so that memory
    /// stays bounded whatever the input's size. A line longer than `maxLineLength` bytes
    /// is an error naming the file and the line.
    public func forEachLine(maxLineLength: Int = 1 << 20, _ body: (ArraySlice<UInt8>, Int) throws -> Void) throws {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var carry: [UInt8] = []
        var lineNo = 0
        while true {
            let n = try read(into: &chunk, at: 0, count: chunk.count)
            if n == 0 { break }
            var start = 0
            while let nl = chunk[start..<n].firstIndex(of: 0x0a) {
                lineNo += 1
                if carry.isEmpty {
                    try body(chunk[start..<nl], lineNo)
                } else {
                    carry.append(contentsOf: chunk[start..<nl])
                    guard carry.count <= maxLineLength else { throw longLine(lineNo, maxLineLength) }
                    try body(carry[...], lineNo)
                    carry.removeAll(keepingCapacity: true)
                }
                start = nl + 1
            }
            carry.append(contentsOf: chunk[start..<n])
            guard carry.count <= maxLineLength else { throw longLine(lineNo + 1, maxLineLength) }
            try Interrupt.check()
        }
        if !carry.isEmpty { try body(carry[...], lineNo + 1) }
    }

    private func longLine(_ line: Int, _ max: Int) -> OvlError {
        OvlError.file(path, "line \(line) is longer than \(max) bytes")
    }

    /// Reads everything that is left (for small inputs).
    public func readAll(limit: Int = 1 << 30) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try read(into: &buf, at: 0, count: buf.count)
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            guard out.count <= limit else { throw OvlError.file(path, "is larger than \(limit) bytes") }
        }
        return out
    }
}
