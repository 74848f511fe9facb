import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

/// The rewriter's memory account keeps the units it laid out for earlier clusterings of a
/// session and takes one again when every question it asked of the clustering gets the
/// same answer (`UnitMemo`). Through a random walk of γ, buffer size and buffer count, the
/// account with the units kept must equal the one a builder without any memo works out,
/// part by part, down to every cluster's size.
@Suite struct UnitMemoTests {
    func brief(_ m: MemoryAccount) -> String {
        "text \(m.residentText), thunks \(m.thunks), data \(m.managerData), zero \(m.managerZero), "
            + "\(m.clusterBytes?.count ?? -1) clusters of \(m.clusterBytes?.reduce(0, +) ?? -1) B (\(m.note))"
    }

    @Test(arguments: ["crc-glibc", "sortcb-glibc", "crc"])
    func keptUnitsGiveTheAccountOfAFreshLayout(_ name: String) throws {
        let image = Fixture.samples + "/" + name
        let session = try Session.open(image: image, profiles: Fixture.traces(of: image), config: Config(), showProgress: false)
        var rng = SplitMix(seed: 0x51_7e + UInt64(name.count))
        var config = Config()
        for step in 0..<10 {
            switch rng.next() % 4 {
            case 0, 1: config.gamma = [0, 1, 2, 3, 4, 5, 8, 12, 30, 100][Int(rng.next() % 10)]
            case 2: config.bufferSize = [384, 512, 1024, 2048, 4096][Int(rng.next() % 5)]  // small ones share thunks and demote
            default: config.buffers = 1 + Int(rng.next() % 2)
            }
            try session.update(config)
            let c = session.cluster(recordEvents: false)
            let kept = try Rewriter.account(session: session, clustering: c)
            var fresh = Builder(session: session, clustering: c, backend: config.storage, linker: nil)
            #expect(fresh.memo == nil)
            let expected = try fresh.plan()
            let same = kept == expected
            #expect(same, "\(name) step \(step), γ \(config.gamma), buffer \(config.bufferSize) × \(config.buffers): kept \(brief(kept)), fresh \(brief(expected))")
        }
        // The walk must have taken units from the memo, or it tested nothing.
        #expect(session.rewriteUnits.hits > 0, "\(name): no unit was ever taken from the memo")
    }
}
