import Foundation

/// Output files: never one of the run's inputs, written whole or not at all, and a
/// failure says why.
public enum OutputFile {
    /// Whether two paths name the same file: the same device and inode when both exist
    /// (hard links, symbolic links, `./x` and `x` alike), else the same resolved path.
    public static func same(_ a: String, _ b: String) -> Bool {
        if a == "-" || b == "-" { return false }
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0 && stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        return resolved(a) == resolved(b)
    }

    static func resolved(_ p: String) -> String {
        URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Refuses, before any work, an output that is one of the inputs or that another
    /// output names too. `outputs` pairs each path with the option that gave it.
    public static func check(outputs: [(option: String, path: String)], inputs: [(what: String, path: String)]) throws {
        for (i, o) in outputs.enumerated() {
            if let input = inputs.first(where: { same(o.path, $0.path) }) {
                throw OvlError.file(o.path, "is \(input.what), an input of this run; refusing to overwrite it with \(o.option)")
            }
            if let other = outputs[..<i].first(where: { same(o.path, $0.path) }) {
                throw OvlError.file(o.path, "is named by both \(other.option) and \(o.option); give each output its own file")
            }
        }
    }

    /// Writes `data` to `path` through a temporary file beside it and a rename, so a
    /// failed run leaves no partial output; never over one of `inputs`.
    public static func write(_ data: Data, to path: String, inputs: [String] = [], executable: Bool = false) throws {
        if inputs.contains(where: { same(path, $0) }) {
            throw OvlError.file(path, "is an input of this run; refusing to overwrite it")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, executable ? 0o755 : 0o644)
        guard fd >= 0 else { throw cannotWrite(path, dir: dir, errno) }
        var ok = true
        var err: Int32 = 0
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; ok = false; err = errno; return }
                off += n
            }
        }
        if close(fd) != 0 && ok { ok = false; err = errno }
        if ok && rename(tmp, path) != 0 { ok = false; err = errno }
        if !ok {
            unlink(tmp)
            throw cannotWrite(path, dir: dir, err)
        }
    }

    static func cannotWrite(_ path: String, dir: String, _ e: Int32) -> OvlError {
        let d = dir.isEmpty ? "." : dir
        var isDir: ObjCBool = false
        if e == ENOENT && !FileManager.default.fileExists(atPath: d, isDirectory: &isDir) {
            return OvlError.file(path, "cannot be written: the directory \(d) does not exist")
        }
        if e == ENOTDIR || (e == ENOENT && !isDir.boolValue) {
            return OvlError.file(path, "cannot be written: \(d) is not a directory")
        }
        if e == EISDIR { return OvlError.file(path, "cannot be written: it is a directory") }
        return OvlError.file(path, "cannot be written (\(String(cString: strerror(e))))")
    }
}
