#!/usr/bin/env python3
"""Cut a window out of an ovl trace (Sources/OvlCore/Profile/TraceFile.swift, version 1).

    excerpt.py IN OUT --count N [--start-in LO HI]

The window holds N consecutive addresses, starting at the first address inside [LO, HI)
(the kernel's code, so that a boot excerpt does not begin in the firmware). The header's
code hash and image name are kept: the excerpt replays against the same image.
"""
import argparse
import struct
import sys


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return out


def zigzag(d):
    d &= (1 << 64) - 1
    s = d - (1 << 64) if d >> 63 else d
    return ((s << 1) ^ (s >> 63)) & ((1 << 64) - 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start-in", nargs=2, metavar=("LO", "HI"))
    a = ap.parse_args()
    lo, hi = (int(a.start_in[0], 16), int(a.start_in[1], 16)) if a.start_in else (0, 1 << 64)

    data = open(a.input, "rb").read()
    if data[:8] != b"OVLTRACE" or struct.unpack_from("<I", data, 8)[0] != 1:
        sys.exit(f"{a.input}: not a version-1 ovl trace")
    code_hash = struct.unpack_from("<Q", data, 16)[0]
    pos = 24
    strings = []
    for _ in range(2):
        n = struct.unpack_from("<H", data, pos)[0]
        strings.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    total = struct.unpack_from("<Q", data, pos)[0]
    pos += 8

    window = []
    prev = 0
    started = False
    index = 0
    for index in range(total):
        v = 0
        shift = 0
        while True:
            b = data[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        d = (v >> 1) ^ -(v & 1)
        prev = (prev + d) & ((1 << 64) - 1)
        if not started and lo <= prev < hi:
            started = True
            first = index
        if started:
            window.append(prev)
            if len(window) == a.count:
                break
    if not window:
        sys.exit(f"{a.input}: no address in the start range")

    name = strings[0]
    cmd = f"excerpt of {a.input.split('/')[-1]}: {len(window)} of {total} addresses from #{first}".encode()
    out = bytearray(b"OVLTRACE")
    out += struct.pack("<IIQ", 1, 0, code_hash)
    out += struct.pack("<H", len(name)) + name
    out += struct.pack("<H", len(cmd)) + cmd
    out += struct.pack("<Q", len(window))
    prev = 0
    edges = {}
    for i, pc in enumerate(window):
        out += varint(zigzag(pc - prev))
        if i > 0:
            edges[(prev, pc)] = edges.get((prev, pc), 0) + 1
        prev = pc
    out += struct.pack("<I", len(edges))
    for (f, t), c in sorted(edges.items()):
        out += varint(f) + varint(t) + varint(c)
    out += b"OVLEND\0\0"
    with open(a.output, "wb") as f:
        f.write(out)
    print(f"{a.output}: {len(window)} addresses from #{first} of {total}, {len(out)} bytes")


if __name__ == "__main__":
    main()
