"""What device code a CUDA library ships: every fatbin (magic 0xBA55ED50) embedded in an ELF file, counted by entry
kind (PTX / SASS) and architecture, and how many fatbins carry no PTX at all (the emulated device runs PTX only,
so a kernel from such a fatbin cannot run there). A stand-in for `cuobjdump --list-ptx --list-elf`, which the
CUDA 13 toolkit here does not ship.

    .venv/bin/python scripts/fatbin_inventory.py LIB.so [LIB2.so ...]

Prints per file: fatbins found, fatbins without PTX, then "KIND arch: entries" lines. Reads the fatbin and entry
headers only (layout as emu_c/fatbin.c reads it); compressed payloads are not opened.
"""
from __future__ import annotations

import collections
import mmap
import struct
import sys

MAGIC = struct.pack("<I", 0xBA55ED50)
KINDS = {1: "PTX", 2: "SASS"}


def inventory(path: str) -> tuple[int, int, collections.Counter]:
    """-> (fatbins, fatbins without a PTX entry, Counter of (kind, arch) entries)."""
    entries: collections.Counter = collections.Counter()
    fatbins = no_ptx = 0
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = m.find(MAGIC)
        while pos >= 0:
            version, header, size = struct.unpack_from("<HHQ", m, pos + 4)
            if version != 1 or header != 16 or not 0 < size <= len(m) - pos - 16:
                pos = m.find(MAGIC, pos + 4)
                continue
            fatbins += 1
            off, end, has_ptx = pos + 16, pos + 16 + size, False
            while off + 32 <= end:
                kind, _, ehdr, payload = struct.unpack_from("<HHIQ", m, off)
                arch = struct.unpack_from("<I", m, off + 28)[0]
                if ehdr < 32 or off + ehdr + payload > end:
                    break
                entries[(KINDS.get(kind, f"kind{kind}"), arch)] += 1
                has_ptx |= kind == 1
                off += ehdr + payload
            no_ptx += not has_ptx
            pos = m.find(MAGIC, end)
    return fatbins, no_ptx, entries


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: fatbin_inventory.py LIB.so [...]", file=sys.stderr)
        return 2
    for p in paths:
        try:
            n, no_ptx, entries = inventory(p)
        except OSError as e:
            print(f"fatbin_inventory: {p}: {e.strerror}", file=sys.stderr)
            return 1
        print(f"{p}: {n} fatbins, {no_ptx} without PTX")
        for (kind, arch), count in sorted(entries.items()):
            print(f"  {kind:4s} {'compute' if kind == 'PTX' else 'sm'}_{arch}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
