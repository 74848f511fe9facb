#!/usr/bin/env python3
"""Reduce a vmlinux to what ovl's analysis reads, for the committed CI extract.

    reduce.py VMLINUX OUT

Every section header is kept (so section indices, symbols and relocations stay valid),
but only these sections keep their bytes: the executable sections (decoded, and hashed
into the trace identity), .rodata (jump tables), the exception table (read entry by
entry: the build clears its relocations), the symbol and string tables and every .rela
section. The others become SHT_NOBITS of the same address and size. Program headers are
kept as they are (ovl does not read segment contents of a kernel).
"""
import struct
import sys

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a little-endian ELF64"
(e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum,
 e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)

SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS = 2, 3, 4, 8
SHF_EXECINSTR = 4
headers = [list(struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize)) for i in range(e_shnum)]
shstr = headers[e_shstrndx]
names = []
for h in headers:
    o = shstr[4] + h[0]
    names.append(data[o:data.index(b"\0", o)].decode())
keep_bytes = {".rodata", "__ex_table"}

out = bytearray(data[:64])
# Program headers right after the ELF header.
phoff = len(out)
out += data[e_phoff:e_phoff + e_phnum * e_phentsize]
for i, h in enumerate(headers):
    name, typ, flags, size = names[i], h[1], h[2], h[5]
    keep = i == 0 or typ in (SHT_SYMTAB, SHT_STRTAB, SHT_RELA) or flags & SHF_EXECINSTR or name in keep_bytes
    if typ == SHT_NOBITS or not keep or size == 0:
        if i != 0 and typ != SHT_NOBITS:
            h[1] = SHT_NOBITS
        h[4] = 0
        continue
    align = max(h[8], 1)
    while len(out) % min(align, 4096):
        out.append(0)
    off = h[4]
    h[4] = len(out)
    out += data[off:off + size]
while len(out) % 8:
    out.append(0)
shoff = len(out)
for h in headers:
    out += struct.pack("<IIQQQQIIQQ", *h)
struct.pack_into("<HHIQQQIHHHHHH", out, 16, e_type, e_machine, e_version, e_entry, phoff, shoff, e_flags,
                 e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx)
open(dst, "wb").write(out)
print(f"{dst}: {len(out):,} bytes from {len(data):,}")
