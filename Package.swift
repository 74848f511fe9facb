// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ovl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ovl", targets: ["ovl"]),
        .library(name: "OvlCore", targets: ["OvlCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // Thin C layer over Zydis (libzydis-dev): decoding, formatting, encoding.
        .target(
            name: "CZydisShim",
            linkerSettings: [.linkedLibrary("Zydis"), .linkedLibrary("Zycore")]
        ),
        // Thin C layer over ncursesw: the few calls the explorer needs, macros made functions.
        .target(
            name: "CCurses",
            linkerSettings: [.linkedLibrary("ncursesw")]
        ),
        // The overlay manager's load rules, shared by the cost model's replay and the
        // runtime the rewriter writes into images.
        .target(name: "COverlayRules"),
        // Processor hints Swift cannot spell (prefetch), for the coalescer's hot loops.
        .target(name: "CHints"),
        // The replay's scan for cluster entries, with AVX-512 where the processor has it.
        .target(name: "CReplay"),
        // The engine: ELF, decoder, CFG, profiles, clustering, cost. No terminal code.
        .target(
            name: "OvlCore",
            dependencies: ["CZydisShim", "COverlayRules", "CHints", "CReplay", .product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // The explorer's model, views and key handling, drawn into a plain cell grid.
        .target(
            name: "OvlExplorer",
            dependencies: ["OvlCore"]
        ),
        .executableTarget(
            name: "ovl",
            dependencies: [
                "OvlCore", "OvlExplorer", "CCurses",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ovl-bench",
            dependencies: ["OvlCore", "OvlExplorer"]
        ),
        // In-process mutation fuzzing of every parser of outside input (scripts/fuzz.sh).
        .executableTarget(
            name: "ovl-fuzz",
            dependencies: ["OvlCore"]
        ),
        // Paths every test target shares (the package root, the built `ovl`).
        .target(name: "OvlTestSupport", path: "Tests/OvlTestSupport"),
        .testTarget(name: "OvlCoreTests", dependencies: ["OvlCore", "OvlTestSupport"]),
        // The Linux analysis on the committed extract of Samples/linux/run.sh's kernel.
        .testTarget(name: "OvlLinuxTests", dependencies: ["OvlCore", "ovl", "OvlTestSupport"]),
        // The explorer's views, keys and exports; depends on `ovl` for the tmux and CLI runs.
        .testTarget(name: "OvlExplorerTests", dependencies: ["OvlExplorer", "OvlCore", "ovl", "OvlTestSupport"]),
        // End-to-end tests of the `ovl` binary; depending on it makes `swift test` build it.
        .testTarget(name: "OvlCLITests", dependencies: ["ovl", "OvlTestSupport"]),
        // The rewriter end to end: rewritten samples run, and count what the model predicts.
        .testTarget(name: "OvlRewriteTests", dependencies: ["OvlCore", "ovl", "OvlTestSupport"]),
    ]
)
