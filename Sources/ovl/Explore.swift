import ArgumentParser
import CCurses
import Foundation
import OvlCore
import OvlExplorer

struct Explore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explore",
        abstract: "Explore a clustering in a terminal UI and tune the core set, γ and the buffer by hand.",
        discussion: """
            With no image, opens the bundled sample (Samples/bin/sortcb with its id and name traces). \
            Keys: arrows or h j k l move, Enter opens, Backspace goes back, Tab and 1-6 switch views, \
            + and - change γ, Space pins a function, u undoes, E exports, ? lists every key, q quits. \
            Colours follow NO_COLOR; the ASCII look is used when the locale is not UTF-8.
            """)

    @Argument(help: "The ELF image: a static x86-64 program or a Linux vmlinux (default: the bundled sample).", completion: .file())
    var image: String?

    @Option(name: .customLong("profile"), help: ArgumentHelp("A profile: an ovl trace, a QEMU -d exec log or a BOLT .fdata file. Repeat for phases (boot, workload).", valueName: "file"), completion: .file())
    var profiles: [String] = []

    @OptionGroup var settings: ConfigOptions

    @Flag(help: "No colours (also when NO_COLOR is set).")
    var noColor = false

    @Flag(help: "Draw bars and boxes with ASCII characters only.")
    var ascii = false

    @Option(help: ArgumentHelp("Print one screen of this size (such as 120x40) as text instead of running interactively.", valueName: "WxH"))
    var screen: String?

    @Option(help: ArgumentHelp("With --screen: keys to press first (`2<Enter>`, `<Space>`, `<C-r>`, …).", valueName: "keys"))
    var keys: String?

    func run() throws {
        var status: Int32 = 0
        try guarded {
            let cfg = try settings.resolvedConfig()
            var imagePath = image
            var profilePaths = profiles
            if imagePath == nil {
                guard let sample = BundledSample.locate(from: BundledSample.searchDirectories) else {
                    throw OvlError(BundledSample.notFoundMessage)
                }
                imagePath = sample.image
                if profilePaths.isEmpty { profilePaths = sample.profiles }
            }
            var size: (Int, Int)? = nil
            if let screen {
                let parts = screen.lowercased().split(separator: "x").compactMap { Int($0) }
                guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { throw OvlError("--screen must be WIDTHxHEIGHT, such as 120x40, not '\(screen)'") }
                size = (parts[0], parts[1])
            } else if keys != nil {
                throw OvlError("--keys needs --screen")
            }
            if size == nil && (isatty(0) == 0 || isatty(1) == 0) {
                throw OvlError("ovl explore needs a terminal; to print one screen as text, give --screen 120x40")
            }
            let session = try Session.open(image: imagePath!, profiles: profilePaths, config: cfg, showProgress: Progress.stderrIsTerminal)
            if size != nil { warnAboutUnmatchedGlobs(session) }
            let engine = ExplorerEngine(session: session)
            if let (w, h) = size {
                let driver = ExplorerDriver(engine: engine, config: cfg, width: w, height: h, glyphs: ascii ? .ascii : .unicode)
                if let keys { driver.type(keys) }
                print(driver.screen)
                return
            }
            let useColor = !noColor && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
            status = try TerminalFrontEnd(engine: engine, config: cfg, color: useColor, forceASCII: ascii).run()
        }
        if status != 0 { throw ExitCode(status) }
    }
}

/// The explorer in a real terminal: ncurses shows the grid the views draw, keys and mouse
/// events go to the reducer, engine work runs on the runtime's worker. The terminal is
/// restored however the loop ends: `q`, Ctrl-C, SIGTERM, an error, or a crash.
final class TerminalFrontEnd {
    let engine: ExplorerEngine
    let config: Config
    let color: Bool
    let forceASCII: Bool

    init(engine: ExplorerEngine, config: Config, color: Bool, forceASCII: Bool) {
        self.engine = engine
        self.config = config
        self.color = color
        self.forceASCII = forceASCII
    }

    func run() throws -> Int32 {
        guard ovl_curses_start(color ? 1 : 0) == 0 else { throw OvlError("cannot start the terminal UI (is TERM set?)") }
        defer { ovl_curses_stop() }
        ovl_curses_install_signal_handlers()
        let glyphs: Glyphs = forceASCII || ovl_curses_utf8() == 0 ? .ascii : .unicode
        var rows: Int32 = 0, cols: Int32 = 0
        ovl_curses_size(&rows, &cols)
        // Reports from the workers end the wait for a key at once: an analysis shows as
        // soon as it is done, not at the wait's timeout.
        let wakes = ovl_curses_wake_init() == 0
        let wake: (@Sendable () -> Void)? = wakes ? { @Sendable in ovl_curses_wake() } : nil
        let runtime = ExplorerRuntime(engine: engine, onReport: wake)
        var (state, effects) = Explorer.start(model: engine.model, config: config, width: Int(cols), height: Int(rows))
        runtime.submit(effects)
        var shown: Grid? = nil
        var dirty = true
        while true {
            if dirty {
                let grid = Renderer.render(state, glyphs: glyphs)
                draw(grid, over: shown, ascii: !glyphs.isUnicode)
                shown = grid
                dirty = false
            }
            if let status = state.exitStatus { return status }
            if Interrupt.requested { return 130 }
            if ovl_curses_quit_requested() != 0 { return 143 }
            var inputs: [Input] = []
            let code = Int(ovl_curses_getkey(runtime.isBusy ? 25 : 250))
            switch code {
            case OVL_KEY_NONE:
                break
            case OVL_KEY_RESIZE:
                ovl_curses_size(&rows, &cols)
                inputs.append(.resize(width: Int(cols), height: Int(rows)))
            case OVL_KEY_MOUSE:
                var kind: Int32 = 0, y: Int32 = 0, x: Int32 = 0
                if ovl_curses_mouse(&kind, &y, &x) != 0, let k = mouseKind(kind) {
                    inputs.append(.mouse(k, x: Int(x), y: Int(y)))
                }
            default:
                if let k = key(code) { inputs.append(.key(k)) }
            }
            inputs += runtime.takeEvents().map { .engine($0) }
            for input in inputs {
                (state, effects) = Explorer.handle(state, input)
                if effects.contains(where: { if case .redraw = $0 { return true } else { return false } }) {
                    ovl_curses_clear()
                    shown = nil
                }
                runtime.submit(effects)
                dirty = true
            }
        }
    }

    /// Copies the rows that changed to the terminal.
    func draw(_ g: Grid, over old: Grid?, ascii: Bool) {
        let sameSize = old?.width == g.width && old?.height == g.height
        if !sameSize { ovl_curses_clear() }
        for y in 0..<g.height {
            if sameSize, let old, (0..<g.width).allSatisfy({ old[x: $0, y: y] == g[x: $0, y: y] }) { continue }
            for run in g.runs(inRow: y) {
                var chars = run.scalars.map { Int32(bitPattern: ascii && $0.value > 0x7e ? 0x3f : $0.value) }
                ovl_curses_draw(Int32(y), Int32(run.x), &chars, Int32(chars.count), styleBits(run.style))
            }
        }
        ovl_curses_refresh()
    }

    func styleBits(_ s: Style) -> Int32 {
        var v = Int32(s.color.rawValue)
        if s.bold { v |= Int32(OVL_STYLE_BOLD) }
        if s.reverse { v |= Int32(OVL_STYLE_REVERSE) }
        if s.underline { v |= Int32(OVL_STYLE_UNDERLINE) }
        if s.dim { v |= Int32(OVL_STYLE_DIM) }
        return v
    }

    func mouseKind(_ k: Int32) -> MouseKind? {
        switch k {
        case Int32(OVL_MOUSE_CLICK): return .click
        case Int32(OVL_MOUSE_DOUBLE): return .doubleClick
        case Int32(OVL_MOUSE_WHEEL_UP): return .wheelUp
        case Int32(OVL_MOUSE_WHEEL_DOWN): return .wheelDown
        default: return nil
        }
    }

    func key(_ code: Int) -> Key? {
        switch code {
        case OVL_KEY_UP: return .up
        case OVL_KEY_DOWN: return .down
        case OVL_KEY_LEFT: return .left
        case OVL_KEY_RIGHT: return .right
        case OVL_KEY_HOME: return .home
        case OVL_KEY_END: return .end
        case OVL_KEY_PGUP: return .pageUp
        case OVL_KEY_PGDN: return .pageDown
        case OVL_KEY_BACKSPACE: return .backspace
        case OVL_KEY_ENTER: return .enter
        case OVL_KEY_BTAB: return .backTab
        case OVL_KEY_DC: return .delete
        case OVL_KEY_F1: return .f1
        case 9: return .tab
        case 27: return .escape
        case 1...26: return .ctrl(Character(UnicodeScalar(UInt8(code) + 0x60)))
        case 32..<0x110000:
            guard let u = UnicodeScalar(UInt32(code)) else { return nil }
            return .char(Character(u))
        default: return nil
        }
    }
}
