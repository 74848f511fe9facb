/// Assembles the rewritten ELF file: the original bytes (data patched), then the new
/// segments, then new section headers and symbol tables.
///
/// The new segments go below the original image when there is room (`placeBelowImage`),
/// so its heap starts where it did; the program header table then sits in the unused
/// rest of the file's first page, mapped read-only at the lowest address (the kernel and
/// qemu-user both find it there). Otherwise they go above the image, vaddr = base + offset
/// for the first of them, with the table leading it. File layout:
///
///     original image …  padding
///     RX   program headers │ overlay manager │ thunks │ resident text
///     RW   manager data │ entry table │ cluster address table │ counters   (+ zero-filled:
///          manager buffers, restore-record pool)
///     R-X  code buffers (no file bytes; the manager makes the pages
///          writable only while it writes code into them)
///     R    overlay store (memory backend; with the file backend the bytes are in the
///          file but in no segment, and the manager preads them from /proc/self/exe)
///     .shstrtab │ .symtab │ .strtab │ section headers
///
/// The original code segment (only analysed code sections in it) is no longer loaded;
/// its sections become non-allocated `.ovl.orig.*` so tools still show the old bytes.
struct ImageWriter {
    let original: [UInt8]
    let elf: ELFFile
    var newEntry: UInt64 = 0
    var droppedCodeSections = Set<String>()
    var keptPhdrs: [ELFFile.ProgramHeader] = []
    var rx: (offset: UInt64, vaddr: UInt64, bytes: [UInt8]) = (0, 0, [])
    var rw: (offset: UInt64, vaddr: UInt64, bytes: [UInt8], memSize: UInt64) = (0, 0, [], 0)
    var buffer: (offset: UInt64, vaddr: UInt64, size: UInt64) = (0, 0, 0)
    var store: (offset: UInt64, vaddr: UInt64, bytes: [UInt8]) = (0, 0, [])
    /// When the new segments lie below the image: where the program header table goes in
    /// the file's first page, and the address a read-only segment maps that page at.
    var firstPage: (tableOffset: UInt64, vaddr: UInt64)? = nil
    /// New sections: name, address, size, flags, file offset, alignment.
    var sections: [(String, UInt64, UInt64, UInt64, UInt64, UInt64)] = []
    /// New symbols: name, value, size, index into `sections`, type.
    var symbols: [(String, UInt64, UInt64, Int, UInt8)] = []

    func write() throws -> [UInt8] {
        var out = original
        func pad(to o: UInt64) {
            precondition(UInt64(out.count) <= o, "layout overlap")
            out += [UInt8](repeating: 0, count: Int(o) - out.count)
        }
        func u16(_ v: Int, at o: Int) { out.replaceSubrange(o..<(o + 2), with: le(UInt64(v), 2)) }
        func u64(_ v: UInt64, at o: Int) { out.replaceSubrange(o..<(o + 8), with: le(v, 8)) }

        // Program headers.
        var ph: [UInt8] = []
        func phdr(_ type: UInt32, _ flags: UInt32, _ off: UInt64, _ vaddr: UInt64, _ filesz: UInt64, _ memsz: UInt64, _ align: UInt64) {
            ph += le(UInt64(type), 4) + le(UInt64(flags), 4) + le(off, 8) + le(vaddr, 8) + le(vaddr, 8) + le(filesz, 8) + le(memsz, 8) + le(align, 8)
        }
        // Loadable segments stay sorted by address, as the ELF specification asks (and
        // qemu-user relies on): the new ones go before the original ones when they lie
        // below the image (led by the segment that maps the file's first page), after them
        // when above.
        func newSegments() {
            phdr(ELFFile.PT_LOAD, 5, rx.offset, rx.vaddr, UInt64(rx.bytes.count), UInt64(rx.bytes.count), 0x1000)
            phdr(ELFFile.PT_LOAD, 6, rw.offset, rw.vaddr, UInt64(rw.bytes.count), rw.memSize, 0x1000)
            phdr(ELFFile.PT_LOAD, 5, buffer.offset, buffer.vaddr, 0, buffer.size, 0x1000)
            if store.vaddr != 0 {
                phdr(ELFFile.PT_LOAD, 4, store.offset, store.vaddr, UInt64(store.bytes.count), UInt64(store.bytes.count), 0x1000)
            }
        }
        let firstLoad = keptPhdrs.firstIndex { $0.type == ELFFile.PT_LOAD } ?? 0
        let lastLoad = keptPhdrs.lastIndex { $0.type == ELFFile.PT_LOAD } ?? (keptPhdrs.count - 1)
        for (i, h) in keptPhdrs.enumerated() {
            if firstPage != nil && i == firstLoad {
                phdr(ELFFile.PT_LOAD, 4, 0, firstPage!.vaddr, 0x1000, 0x1000, 0x1000)
                newSegments()
            }
            phdr(h.type, h.flags, h.offset, h.virtualAddress, h.fileSize, h.memorySize, h.alignment)
            if firstPage == nil && i == lastLoad { newSegments() }
        }
        var rxBytes = rx.bytes
        if let fp = firstPage {
            out.replaceSubrange(Int(fp.tableOffset)..<(Int(fp.tableOffset) + ph.count), with: ph)
        } else {
            rxBytes.replaceSubrange(0..<ph.count, with: ph)
        }

        pad(to: rx.offset); out += rxBytes
        pad(to: rw.offset); out += rw.bytes
        pad(to: store.offset); out += store.bytes

        // Section names.
        let oldCount = elf.sections.count
        var shstr: [UInt8] = [0]
        func name(_ n: String) -> UInt32 {
            let o = UInt32(shstr.count)
            shstr += Array(n.utf8) + [0]
            return o
        }
        struct SH { var name: UInt32; var type: UInt32; var flags: UInt64; var addr: UInt64; var off: UInt64; var size: UInt64; var link: UInt32; var info: UInt32; var align: UInt64; var entsize: UInt64 }
        var shs: [SH] = []
        for s in elf.sections {
            var h = SH(name: 0, type: s.type, flags: s.flags, addr: s.address, off: s.offset, size: s.size, link: s.link, info: s.info, align: s.alignment, entsize: s.entrySize)
            if droppedCodeSections.contains(s.name) {
                h.name = name(".ovl.orig" + s.name)
                h.flags = 0
            } else {
                h.name = s.index == 0 ? name("") : name(s.name)
            }
            shs.append(h)
        }
        for (n, addr, size, flags, off, align) in sections {
            let nobits = n == ".ovl.bss" || n == ".ovl.buffer" || n == ".ovl.restore"
            shs.append(SH(name: name(n), type: nobits ? ELFFile.SHT_NOBITS : 1, flags: flags, addr: addr, off: off, size: size, link: 0, info: 0, align: align, entsize: 0))
        }

        // Symbols: the original table, then the new ones (global, so the local/global
        // split and every relocation's symbol index stay as they were).
        if let symIdx = elf.sections.firstIndex(where: { $0.type == ELFFile.SHT_SYMTAB }) {
            let symtab = elf.sections[symIdx]
            let strIdx = Int(symtab.link)
            let strtab = elf.sections[strIdx]
            var str = Array(elf.contents(of: strtab))
            var syms = Array(elf.contents(of: symtab))
            for (n, value, size, sec, type) in symbols {
                let o = UInt64(str.count)
                str += Array(n.utf8) + [0]
                syms += le(o, 4) + [(1 << 4) | type, 0] + le(UInt64(oldCount + sec), 2) + le(value, 8) + le(size, 8)
            }
            pad(to: (UInt64(out.count) + 7) & ~7)
            shs[symIdx].off = UInt64(out.count); shs[symIdx].size = UInt64(syms.count)
            out += syms
            shs[strIdx].off = UInt64(out.count); shs[strIdx].size = UInt64(str.count)
            out += str
        }
        let shstrIdx = Int(readLE(original, 62, 2))
        let shstrName = name(".shstrtab")
        if shstrIdx < shs.count {
            shs[shstrIdx].name = shstrName
            shs[shstrIdx].off = UInt64(out.count); shs[shstrIdx].size = UInt64(shstr.count)
        }
        out += shstr
        pad(to: (UInt64(out.count) + 7) & ~7)
        let shoff = out.count
        for h in shs {
            out += le(UInt64(h.name), 4) + le(UInt64(h.type), 4) + le(h.flags, 8) + le(h.addr, 8) + le(h.off, 8) + le(h.size, 8)
            out += le(UInt64(h.link), 4) + le(UInt64(h.info), 4) + le(h.align, 8) + le(h.entsize, 8)
        }

        // ELF header.
        u64(newEntry, at: 24)
        u64(firstPage?.tableOffset ?? rx.offset, at: 32)
        u64(UInt64(shoff), at: 40)
        u16(ph.count / 56, at: 56)
        u16(shs.count, at: 60)
        return out
    }
}
