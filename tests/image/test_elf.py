"""The ELF reader against readelf, on this machine's programs and on synthetic files."""

from __future__ import annotations

import glob
import os
import re
import struct

import pytest

from freshroot.image.elf import ElfError, parse_elf, read_elf
from freshroot.run import run

_DYN = re.compile(r"\((NEEDED|RPATH|RUNPATH|SONAME)\)\s+[^\[]*\[(.*)\]$")
_INTERP = re.compile(r"\[Requesting program interpreter: (.*)\]")


ElfSummary = tuple[str | None, tuple[str, ...], tuple[str, ...], tuple[str, ...], str | None]


def readelf(path: str) -> ElfSummary:
    """(interp, needed, rpath, runpath, soname) as binutils' readelf reports them."""
    dyn = run(["readelf", "-dW", path], check=False).stdout
    needed: list[str] = []
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname: str | None = None
    for line in dyn.splitlines():
        m = _DYN.search(line.strip())
        if m is None:
            continue
        kind, value = m.groups()
        if kind == "NEEDED":
            needed.append(value)
        elif kind == "RPATH":
            rpath = tuple(p for p in value.split(":") if p)
        elif kind == "RUNPATH":
            runpath = tuple(p for p in value.split(":") if p)
        else:
            soname = value
    m = _INTERP.search(run(["readelf", "-lW", path], check=False).stdout)
    return (m.group(1) if m else None, tuple(needed), rpath, runpath, soname)


def sample() -> list[str]:
    files = []
    for pattern in ("/usr/bin/*", "/usr/sbin/*", "/usr/lib/x86_64-linux-gnu/*.so*",
                    "/usr/lib/x86_64-linux-gnu/systemd/*.so"):
        found = sorted(f for f in glob.glob(pattern) if os.path.isfile(f) and not os.path.islink(f))
        files += found[:: max(1, len(found) // 25)]
    return [*files, "/usr/bin/busctl", "/usr/sbin/sshd"]


@pytest.mark.parametrize("path", sample())
def test_matches_readelf(path):
    info = read_elf(path)
    expected = readelf(path)
    if info is None:
        assert expected == (None, (), (), (), None)
        return
    assert (info.interpreter, info.needed, info.rpath, info.runpath, info.soname) == expected


def test_runpath_is_read():
    info = read_elf("/usr/bin/busctl")
    assert info is not None
    assert info.runpath  # systemd's tools find libsystemd-shared through DT_RUNPATH
    assert info.interpreter is not None


def test_not_elf(tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert read_elf(str(script)) is None


def synthetic_elf(*, wide: bool, big: bool, interp: str, needed: list[str], runpath: str | None = None,
                  rpath: str | None = None) -> bytes:
    """A minimal ELF file: header, PT_LOAD over everything, PT_INTERP, PT_DYNAMIC, strings."""
    e = ">" if big else "<"
    strings = b"\0"
    offsets = {}
    for s in [*needed, runpath, rpath]:
        if s is not None:
            offsets[s] = len(strings)
            strings += s.encode() + b"\0"
    ehsize, phentsize = (64, 56) if wide else (52, 32)
    phoff, phnum = ehsize, 3
    interp_off = phoff + phnum * phentsize
    interp_b = interp.encode() + b"\0"
    str_off = interp_off + len(interp_b)
    dyn_off = str_off + len(strings)
    vbase = 0x400000
    entries = [(1, offsets[n]) for n in needed]
    if runpath is not None:
        entries.append((29, offsets[runpath]))
    if rpath is not None:
        entries.append((15, offsets[rpath]))
    entries += [(5, vbase + str_off), (10, len(strings)), (0, 0)]
    dfmt = e + ("qQ" if wide else "iI")
    dyn = b"".join(struct.pack(dfmt, t, v) for t, v in entries)
    total = dyn_off + len(dyn)
    ident = b"\x7fELF" + bytes([2 if wide else 1, 2 if big else 1, 1]) + b"\0" * 9
    header = ident + struct.pack(e + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"), 3, 62 if wide else 3, 1, 0,
                                 phoff, 0, 0, ehsize, phentsize, phnum, 0, 0, 0)

    def ph(t: int, off: int, size: int) -> bytes:
        if wide:
            return struct.pack(e + "IIQQQQQQ", t, 4, off, vbase + off, vbase + off, size, size, 8)
        return struct.pack(e + "IIIIIIII", t, off, vbase + off, vbase + off, size, size, 4, 4)

    phdrs = ph(1, 0, total) + ph(3, interp_off, len(interp_b)) + ph(2, dyn_off, len(dyn))
    return header + phdrs + interp_b + strings + dyn


@pytest.mark.parametrize(("wide", "big"), [(True, False), (False, False), (True, True), (False, True)])
def test_synthetic_classes_and_byte_orders(tmp_path, wide, big):
    data = synthetic_elf(wide=wide, big=big, interp="/lib/ld.so.1", needed=["liba.so.1", "libb.so.2"],
                         runpath="$ORIGIN/../lib:/opt/x", rpath="/old")
    info = parse_elf(data)
    assert info is not None
    assert info.interpreter == "/lib/ld.so.1"
    assert info.needed == ("liba.so.1", "libb.so.2")
    assert info.runpath == ("$ORIGIN/../lib", "/opt/x")
    assert info.rpath == ("/old",)
    path = tmp_path / "prog"
    path.write_bytes(data)
    # binutils agrees with what we wrote (little-endian and big-endian alike)
    assert readelf(str(path)) == ("/lib/ld.so.1", ("liba.so.1", "libb.so.2"), ("/old",),
                                  ("$ORIGIN/../lib", "/opt/x"), None)


def test_truncated_file_raises():
    data = synthetic_elf(wide=True, big=False, interp="/x", needed=["liba.so"])
    with pytest.raises(ElfError):
        parse_elf(data[:100])
