import Foundation
import OvlTestSupport
import XCTest
@testable import OvlCore

/// A kernel built without what the kernel rewriter needs is refused before any work, with
/// a message naming the file and the configuration option to change. The committed
/// extract is such a kernel: it was built before `config.fragment` gained the PVH entry.
final class KernelRefusalTests: XCTestCase {
    override func setUpWithError() throws { try LinuxExtract.requireXZ() }

    func refusal(_ path: String) -> String? {
        do {
            let elf = try ELFFile(path: path)
            XCTAssertTrue(KernelRewriter.isKernel(elf), "\(path) is not recognised as a kernel")
            try KernelRewriter.check(elf)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testAKernelWithoutAPVHEntryIsRefusedNamingTheOption() throws {
        let elf = try ELFFile(path: LinuxExtract.image)
        XCTAssertFalse(elf.symbols.contains { $0.name == "pvh_start_xen" }, "the extract has a PVH entry; this test needs a kernel without one")
        let message = try XCTUnwrap(refusal(LinuxExtract.image))
        XCTAssertTrue(message.contains(LinuxExtract.image), message)
        XCTAssertTrue(message.contains("CONFIG_PVH=y") && message.contains("CONFIG_HYPERVISOR_GUEST=y"), message)
    }

    func testAKernelWithoutRelocationsIsRefusedNamingTheOptions() throws {
        guard let objcopy = Tools.which("objcopy") else {
            if Tools.ci { throw Tools.Missing(tool: "objcopy") }
            throw XCTSkip("not installed: objcopy (scripts/deps.sh installs binutils)")
        }
        let out = NSTemporaryDirectory() + "ovl-norelocs-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: objcopy)
        p.arguments = ["--remove-relocations=*", LinuxExtract.image, out]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let message = try XCTUnwrap(refusal(out))
        XCTAssertTrue(message.contains("CONFIG_RELOCATABLE=y") && message.contains("CONFIG_RANDOMIZE_BASE=y"), message)
    }

    /// The command line: one line naming the file, exit status 1, nothing written.
    func testRewriteRefusesTheExtractWithOneLineAndNoOutput() throws {
        let dir = NSTemporaryDirectory() + "ovl-kref-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestPaths.ovl)
        p.arguments = ["rewrite", LinuxExtract.image, "--config", LinuxExtract.configPath, "-o", dir + "/out"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 1, text)
        XCTAssertEqual(text.split(separator: "\n").count, 1, text)
        XCTAssertTrue(text.contains("CONFIG_PVH"), text)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
