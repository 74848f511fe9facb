/// A key as the explorer sees it, independent of ncurses' numbering.
public enum Key: Hashable, Sendable {
    /// A printable character, space included.
    case char(Character)
    /// Control and a letter (`.ctrl("r")` is Ctrl-R).
    case ctrl(Character)
    case up, down, left, right, home, end, pageUp, pageDown
    case enter, backspace, tab, backTab, escape, delete, f1

    /// How the help screen and the status line write it.
    public var label: String {
        switch self {
        case .char(" "): return "Space"
        case .char(let c): return String(c)
        case .ctrl(let c): return "Ctrl-" + String(c).uppercased()
        case .up: return "↑"
        case .down: return "↓"
        case .left: return "←"
        case .right: return "→"
        case .home: return "Home"
        case .end: return "End"
        case .pageUp: return "PgUp"
        case .pageDown: return "PgDn"
        case .enter: return "Enter"
        case .backspace: return "Backspace"
        case .tab: return "Tab"
        case .backTab: return "Shift-Tab"
        case .escape: return "Esc"
        case .delete: return "Del"
        case .f1: return "F1"
        }
    }

    /// The label with arrows spelt out for ASCII terminals.
    public func label(ascii: Bool) -> String {
        guard ascii else { return label }
        switch self {
        case .up: return "Up"
        case .down: return "Down"
        case .left: return "Left"
        case .right: return "Right"
        default: return label
        }
    }

    /// Keys from a compact script, for tests and benchmarks: plain characters stand for
    /// themselves, `<Name>` for a named key (`<Enter> <Space> <Up> <C-r> <BS> <Tab>
    /// <S-Tab> <Esc> <PgDn> <PgUp> <Home> <End> <Del> <Left> <Right> <Down>`).
    public static func script(_ s: String) -> [Key] {
        var out: [Key] = []
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if c == "<", let close = s[i...].firstIndex(of: ">"), close > s.index(after: i) {
                let name = String(s[s.index(after: i)..<close])
                if let k = named(name) {
                    out.append(k)
                    i = s.index(after: close)
                    continue
                }
            }
            out.append(.char(c))
            i = s.index(after: i)
        }
        return out
    }

    static func named(_ n: String) -> Key? {
        switch n.lowercased() {
        case "enter", "cr": return .enter
        case "space": return .char(" ")
        case "up": return .up
        case "down": return .down
        case "left": return .left
        case "right": return .right
        case "home": return .home
        case "end": return .end
        case "pgup": return .pageUp
        case "pgdn": return .pageDown
        case "bs", "backspace": return .backspace
        case "tab": return .tab
        case "s-tab": return .backTab
        case "esc": return .escape
        case "del": return .delete
        case "f1": return .f1
        case "lt": return .char("<")
        default:
            if n.count == 3, n.lowercased().hasPrefix("c-"), let l = n.last { return .ctrl(Character(l.lowercased())) }
            return nil
        }
    }
}

public enum MouseKind: Sendable, Equatable {
    case click, doubleClick, wheelUp, wheelDown
}

/// Everything the explorer reacts to.
public enum Input: Sendable {
    case key(Key)
    case mouse(MouseKind, x: Int, y: Int)
    case resize(width: Int, height: Int)
    case engine(EngineEvent)
}
