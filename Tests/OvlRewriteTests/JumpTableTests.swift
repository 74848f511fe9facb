import Foundation
import OvlTestSupport
@testable import OvlCore
import Testing

/// Jump tables in rewritten images, read back with binutils: a switch in cold code really
/// runs from a cluster, its table sends cases in that cluster straight into the buffer,
/// and a table that anything else refers to (another function's jump, a pointer in data)
/// keeps canonical addresses, so it works wherever it is used from.
@Suite(.serialized) struct JumpTableTests {
    /// The 8-byte words at `address ..< address + 8 * count` of `image`, from objdump -s.
    static func words(_ image: String, at address: UInt64, count: Int) throws -> [UInt64] {
        let end = address + UInt64(8 * count)
        let r = try Fixture.run(try Tools.path("objdump"), ["-s", "--start-address=0x" + String(address, radix: 16),
                                                             "--stop-address=0x" + String(end, radix: 16), image])
        var bytes: [UInt64: UInt8] = [:]
        // " 402000 10104000 00000000 2a104000 00000000  ..@.....*.@....."
        for line in String(decoding: r.stdout, as: UTF8.self).split(separator: "\n") where line.hasPrefix(" ") {
            let f = line.split(separator: " ")
            guard f.count >= 2, var a = UInt64(f[0], radix: 16) else { continue }
            for group in f.dropFirst().prefix(4) {
                guard group.count % 2 == 0, group.allSatisfy(\.isHexDigit) else { break }
                var i = group.startIndex
                while i < group.endIndex {
                    let j = group.index(i, offsetBy: 2)
                    bytes[a] = UInt8(group[i..<j], radix: 16)!
                    a += 1
                    i = j
                }
            }
        }
        return try (0..<count).map { e in
            try (0..<8).reduce(UInt64(0)) { v, k in
                let b = try #require(bytes[address + UInt64(8 * e + k)], "objdump shows no byte at 0x\(String(address + UInt64(8 * e + k), radix: 16))")
                return v | UInt64(b) << (8 * UInt64(k))
            }
        }
    }

    /// A symbol's address in `image`, from readelf.
    static func symbol(_ name: String, in image: String) throws -> UInt64 {
        let r = try Fixture.run(try Tools.path("readelf"), ["-sW", image])
        let found = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").lazy.compactMap { line -> UInt64? in
            let f = line.split(separator: " ")
            return f.count >= 8 && f[7] == name ? UInt64(f[1], radix: 16) : nil
        }.first
        return try #require(found, "readelf shows no symbol \(name) in \(image)")
    }

    static func write(_ r: RewriteResult, to path: String) {
        FileManager.default.createFile(atPath: path, contents: Data(r.image), attributes: [.posixPermissions: 0o755])
    }

    /// jumptab's diag_command is cold: with its trace and the stress configuration, its
    /// switch is in a cluster; the rewritten table holds buffer addresses exactly for the
    /// cases in that cluster; and the program, run on the input that takes the switch,
    /// loads that cluster and behaves like the original.
    @Test(Tools.needed("objdump", "readelf"), arguments: [false, true])
    func aColdSwitchRunsFromItsCluster(stress: Bool) throws {
        let s = try Fixture.session("jumptab", trace: "jumptab.diag", stress: stress)
        let p = s.program
        let f = try #require(p.functionIndex(named: "diag_command"))
        let jump = try #require(p.jumpTables.keys.first { p.blockFunction[Int($0)] == Int32(f) }, "diag_command has a jump table")
        let table = p.jumpTables[jump]!
        #expect(table.entries >= 10)
        let r = try Rewriter.rewrite(session: s, clustering: s.cluster(recordEvents: false), storage: .memory)
        let k = r.chainCluster[Int(s.chains.blockChain[Int(jump)])]
        try #require(k >= 0, "diag_command's switch is in a cluster, not resident")

        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/jumptab.ovl"
        JumpTableTests.write(r, to: image)
        let original = try JumpTableTests.words(Fixture.samples + "/jumptab", at: table.address, count: table.entries)
        let written = try JumpTableTests.words(image, at: table.address, count: table.entries)
        let buffer = try JumpTableTests.symbol("ovl_code_buffer", in: image)
        let inBuffer = { (a: UInt64) in a >= buffer && a < buffer + UInt64(s.config.bufferSize) }
        var direct = 0
        for (e, target) in original.enumerated() {
            let b = try #require(p.block(containing: target), "entry \(e) points into the code")
            let sameCluster = r.chainCluster[Int(s.chains.blockChain[b])] == k
            #expect(inBuffer(written[e]) == sameCluster,
                    "entry \(e): case at 0x\(String(target, radix: 16)) \(sameCluster ? "in" : "outside") the switch's cluster, written 0x\(String(written[e], radix: 16))")
            if sameCluster { direct += 1 }
        }
        #expect(direct > 0, "some cases share the switch's cluster")

        let run = try #require(Fixture.runs.first { $0.binary == "jumptab" && $0.input == "diag" })
        let stats = dir + "/stats.json"
        let ran = try Fixture.run(image, run.args, env: ["OVL_STATS": stats], cwd: dir)
        let (out, status) = Fixture.expected(run)
        #expect(ran.stdout == out && ran.status == status, "the rewritten jumptab behaves like the original; stderr: \(ran.stderr.prefix(300))")
        let counted = try Fixture.countedLoads(stats)
        #expect(counted.perCluster[Int(k)] > 0, "the switch's cluster was loaded")
    }

    /// f jumps through its table from two places (two chains: f(x, 0) and f(x, 1)); h's
    /// table is also reachable through a pointer in data, which main calls through; m's
    /// table is also jumped through by another function, k.
    static let sharedSource = """
        .text
        .globl f, h, m, k
        .type f,@function
    f:  and $3, %edi
        test %esi, %esi
        jne .Lsecond
        jmp *shared(,%rdi,8)
    .Lsecond:
        xor $1, %edi
        jmp *shared(,%rdi,8)
    .Lf0: mov $11, %eax
        ret
    .Lf1: mov $13, %eax
        ret
    .Lf2: mov $17, %eax
        ret
    .Lf3: mov $19, %eax
        ret
        .size f, .-f

        .type h,@function
    h:  and $3, %edi
        jmp *own(,%rdi,8)
    .Lh0: mov $23, %eax
        ret
    .Lh1: mov $29, %eax
        ret
    .Lh2: mov $31, %eax
        ret
    .Lh3: mov $37, %eax
        ret
        .size h, .-h

        .type m,@function
    m:  and $3, %edi
        jmp *mtab(,%rdi,8)
    .Lm0: mov $41, %eax
        ret
    .Lm1: mov $43, %eax
        ret
    .Lm2: mov $47, %eax
        ret
    .Lm3: mov $53, %eax
        ret
        .size m, .-m

        .type k,@function
    k:  xor $2, %edi
        and $3, %edi
        jmp *mtab(,%rdi,8)
        .size k, .-k

        .section .rodata
        .align 8
        .globl shared, own, mtab
    shared: .quad .Lf0, .Lf1, .Lf2, .Lf3
    own:    .quad .Lh0, .Lh1, .Lh2, .Lh3
    mtab:   .quad .Lm0, .Lm1, .Lm2, .Lm3

        .data
        .align 8
        .globl own_pointer
    own_pointer: .quad own
    """

    static let sharedMain = """
    #include <stdio.h>
    #include <stdlib.h>
    int f(int, int), h(int), m(int), k(int);
    extern long (*const *own_pointer)(void);
    int main(int argc, char **argv) {
        int n = argc > 1 ? atoi(argv[1]) : 12;
        long sum = 0;
        for (int i = 0; i < n; i++) {
            sum = sum * 7 + f(i, 0) + 2 * f(i, 1) + 3 * h(i + 1) + 5 * m(i + 2) + 9 * k(i);
            sum += own_pointer[i & 3]();
        }
        printf("%ld\\n", sum);
        return 0;
    }
    """

    /// The shared-table rule on a program built for it. f's table is read by two jumps of
    /// f's own: when the two are in different clusters the table keeps canonical
    /// addresses (each jump may run with the other's cluster absent), when they share a
    /// cluster its entries are buffer addresses. h's table (a pointer to it in data) and
    /// m's (k jumps through it too) never get buffer addresses, even with all their users
    /// in one cluster. Every image computes what the original does.
    @Test(Tools.needed("musl-gcc", "objdump", "readelf"))
    func sharedTablesKeepCanonicalAddresses() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try JumpTableTests.sharedSource.write(toFile: dir + "/tables.s", atomically: true, encoding: .utf8)
        try JumpTableTests.sharedMain.write(toFile: dir + "/main.c", atomically: true, encoding: .utf8)
        let exe = dir + "/prog"
        let cc = try Fixture.run(try Tools.path("musl-gcc"), ["-static", "-O1", "-fno-pie", "-no-pie", "-Wl,--emit-relocs",
                                                            "-o", exe, dir + "/main.c", dir + "/tables.s"])
        try #require(cc.status == 0, "musl-gcc: \(cc.stderr)")
        let expected = try Fixture.run(exe, ["12"])
        try #require(expected.status == 0 && !expected.stdout.isEmpty)

        var cfg = Config()
        cfg.bufferSize = 256
        let s = try Session.open(image: exe, profiles: [], config: cfg, showProgress: false)
        let p = s.program
        func blocks(of name: String) throws -> Range<Int> { p.functions[try #require(p.functionIndex(named: name))].blocks }
        func chains(of name: String) throws -> Set<Int32> { Set(try blocks(of: name).map { s.chains.blockChain[$0] }) }
        let sharedAt = try JumpTableTests.symbol("shared", in: exe), ownAt = try JumpTableTests.symbol("own", in: exe),
            mtabAt = try JumpTableTests.symbol("mtab", in: exe)
        // f's two jumps, h's and m's are resolved tables; k's jump into m is not (another
        // function's cases), so it is a reference to mtab from outside.
        let fJumps = try blocks(of: "f").filter { p.jumpTables[Int32($0)] != nil }
        try #require(fJumps.count == 2 && fJumps.allSatisfy { p.jumpTables[Int32($0)]!.address == sharedAt })
        #expect(s.chains.blockChain[fJumps[0]] != s.chains.blockChain[fJumps[1]], "f's two jumps are in two chains")
        #expect(Set(p.jumpTables.values.map { $0.address }) == [sharedAt, ownAt, mtabAt])
        let second = s.chains.blockChain[fJumps[1]]

        for together in [false, true] {
            // Apart: f but its second jump in cluster 0, the second jump in 1, h in 2,
            // m and k in 3. Together: f in 0, h in 1, m and k in 2. The rest resident.
            let clusters = together ? 3 : 4
            var chainCluster = [Int32](repeating: -1, count: s.chains.count)
            for ch in try chains(of: "f") { chainCluster[Int(ch)] = 0 }
            if !together { chainCluster[Int(second)] = 1 }
            for ch in try chains(of: "h") { chainCluster[Int(ch)] = Int32(clusters - 2) }
            for ch in try chains(of: "m").union(chains(of: "k")) { chainCluster[Int(ch)] = Int32(clusters - 1) }
            var members = [[Int32]](repeating: [], count: clusters)
            for (ch, k) in chainCluster.enumerated() where k >= 0 { members[Int(k)].append(Int32(ch)) }
            let c = Clustering(chainCluster: chainCluster, chainState: chainCluster.map { $0 < 0 ? .core : .cold },
                               clusterSize: [Int32](repeating: 0, count: clusters), clusterChains: members, residentCodeBytes: 0,
                               coreBaseBytes: 0, coreLimit: 0, oversizeChains: [], events: [],
                               parameters: CoalescerParameters(gamma: 0, bufferSize: cfg.bufferSize, coreChains: chainCluster.map { $0 < 0 }))
            let r = try Rewriter.rewrite(session: s, clustering: c, storage: .memory)
            #expect(r.demotedClusters.isEmpty)
            #expect(r.chainCluster == chainCluster)
            let image = dir + "/prog.\(together).ovl"
            JumpTableTests.write(r, to: image)
            let buffer = try JumpTableTests.symbol("ovl_code_buffer", in: image)
            let inBuffer = { (a: UInt64) in a >= buffer && a < buffer + UInt64(cfg.bufferSize) }
            let what = together ? "f's jumps in one cluster" : "f's jumps in two clusters"
            let shared = try JumpTableTests.words(image, at: sharedAt, count: 4)
            #expect(shared.allSatisfy { inBuffer($0) } == together, "\(what): f's table \(shared.map { String($0, radix: 16) })")
            #expect(shared.allSatisfy { inBuffer($0) } || shared.allSatisfy { !inBuffer($0) })
            #expect(try JumpTableTests.words(image, at: ownAt, count: 4).allSatisfy { !inBuffer($0) }, "\(what): h's table, pointed to from data")
            #expect(try JumpTableTests.words(image, at: mtabAt, count: 4).allSatisfy { !inBuffer($0) }, "\(what): m's table, which k jumps through")
            let stats = dir + "/stats.json"
            let ran = try Fixture.run(image, ["12"], env: ["OVL_STATS": stats], cwd: dir)
            #expect(ran.stdout == expected.stdout && ran.status == 0, "\(what): stderr \(ran.stderr.prefix(300))")
            let counted = try Fixture.countedLoads(stats)
            #expect(counted.perCluster.count == clusters && counted.perCluster.allSatisfy { $0 > 0 }, "\(what): every cluster ran")
        }
    }
}
