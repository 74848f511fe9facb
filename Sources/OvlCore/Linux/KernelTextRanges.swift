/// A linked x86-64 `vmlinux` has one `.text` output section: the kernel's special text
/// input sections (`.entry.text`, `.noinstr.text`, `.sched.text`, `.cpuidle.text`,
/// `.spinlock.text`, …) are merged into it, and the linker script brackets each with a
/// pair of symbols (`__entry_text_start`/`__entry_text_end`, …). So a `section:NAME` core
/// entry that names one of them matches no function by section name; this finds its
/// address range from the bracketing symbols instead.
public enum KernelTextRanges {
    /// Input sections whose bracketing symbols do not follow the `__NAME_start` rule.
    static let irregular: [String: (start: String, end: String)] = [
        ".spinlock.text": ("__lock_text_start", "__lock_text_end"),
        ".text..__x86.indirect_thunk": ("__indirect_thunk_start", "__indirect_thunk_end"),
    ]

    /// The bracketing symbols of an input section: `.sched.text` → `__sched_text_start`,
    /// `__sched_text_end`.
    public static func markers(of section: String) -> (start: String, end: String) {
        if let m = irregular[section] { return m }
        var base = section
        while base.hasPrefix(".") { base.removeFirst() }
        base = base.replacingOccurrences(of: ".", with: "_")
        return ("__\(base)_start", "__\(base)_end")
    }

    /// The address range of a merged input section, when the image has both bracketing
    /// symbols and they enclose a non-empty range.
    public static func range(of section: String, in elf: ELFFile) -> Range<UInt64>? {
        let (s, e) = markers(of: section)
        var start: UInt64?, end: UInt64?
        for sym in elf.symbols where sym.sectionIndex != 0 {
            if sym.name == s { start = sym.value } else if sym.name == e { end = sym.value }
            if start != nil && end != nil { break }
        }
        guard let a = start, let b = end, a < b else { return nil }
        return a..<b
    }

    /// Every merged input section of the image that `names` lists and that has a range.
    public static func ranges(_ names: [String], in elf: ELFFile) -> [(name: String, range: Range<UInt64>)] {
        names.compactMap { n in range(of: n, in: elf).map { (n, $0) } }
    }

    /// The input sections a Linux kernel brackets inside `.text`, for reports.
    public static let knownSections = [
        ".entry.text", ".noinstr.text", ".sched.text", ".cpuidle.text", ".spinlock.text",
        ".irqentry.text", ".softirqentry.text", ".kprobes.text", ".text..__x86.indirect_thunk",
    ]
}
