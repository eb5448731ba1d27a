"""A small ELF reader: just what a shared-library closure needs.

It reads the ELF header, the program headers (PT_INTERP for the interpreter, PT_LOAD to map
addresses to file offsets, PT_DYNAMIC for the dynamic section) and, from the dynamic
section, DT_NEEDED, DT_RPATH, DT_RUNPATH and DT_SONAME, with their strings from the string
table DT_STRTAB points at. This is what the dynamic loader itself reads; running ``ldd``
instead would execute the program's loader, which is unsafe on untrusted files and wrong
for foreign architectures.

32- and 64-bit, little- and big-endian. A file that is not ELF gives None; a file that
claims to be ELF but is cut short or inconsistent raises ElfError.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

Buffer = bytes | mmap.mmap

ELF_MAGIC = b"\x7fELF"
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2

PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
PN_XNUM = 0xFFFF

DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_STRSZ = 10
DT_SONAME = 14
DT_RPATH = 15
DT_RUNPATH = 29

ET_EXEC = 2
ET_DYN = 3


class ElfError(ValueError):
    """The file starts like ELF but its headers do not hold together."""


@dataclass(frozen=True, slots=True)
class ElfInfo:
    """What the dynamic loader needs to know about one ELF file."""

    elf_class: int  # ELFCLASS32 or ELFCLASS64
    data: int  # ELFDATA2LSB or ELFDATA2MSB
    machine: int  # e_machine (62 = x86-64)
    elf_type: int  # e_type (ET_EXEC, ET_DYN, ...)
    interpreter: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]  # DT_RPATH entries, split at ':'
    runpath: tuple[str, ...]  # DT_RUNPATH entries, split at ':'
    soname: str | None

    @property
    def is_dynamic(self) -> bool:
        return self.interpreter is not None or bool(self.needed)

    def compatible(self, other: ElfInfo) -> bool:
        """Could ``other`` be loaded into the same process as this file (ld.so's check)?"""
        return (self.elf_class, self.data, self.machine) == (other.elf_class, other.data, other.machine)


@dataclass(frozen=True, slots=True)
class _Segment:
    """One program header of an ELF file."""
    kind: int
    offset: int
    vaddr: int
    filesz: int


def _unpack(fmt: str, data: Buffer, offset: int) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        raise ElfError(f"header at offset {offset} runs past the end of the file")
    return struct.unpack_from(fmt, data, offset)


def _cstring(data: Buffer, offset: int, limit: int) -> str:
    if offset < 0 or offset >= limit:
        raise ElfError(f"string offset {offset} outside the string table")
    end = data.find(b"\0", offset, limit)
    if end < 0:
        raise ElfError(f"string at offset {offset} is not terminated")
    # Paths are bytes to the kernel; keep odd bytes round-trippable.
    return data[offset:end].decode("utf-8", "surrogateescape")


def _split_path(value: str) -> tuple[str, ...]:
    # ld.so treats an empty element as the current directory; nobody means that in an image.
    return tuple(p for p in value.split(":") if p)


def parse_elf(data: Buffer) -> ElfInfo | None:
    """Read ``data`` (a whole file). None if it is not an ELF file."""
    if len(data) < 16 or data[:4] != ELF_MAGIC:
        return None
    elf_class, order = data[4], data[5]
    if elf_class not in (ELFCLASS32, ELFCLASS64) or order not in (ELFDATA2LSB, ELFDATA2MSB):
        raise ElfError(f"unknown ELF class {elf_class} or byte order {order}")
    e = "<" if order == ELFDATA2LSB else ">"
    wide = elf_class == ELFCLASS64
    if wide:
        (e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, _, _, _) = _unpack(
            e + "HHIQQQIHHHHHH", data, 16)
    else:
        (e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, _, _, _) = _unpack(
            e + "HHIIIIIHHHHHH", data, 16)
    if e_phnum == PN_XNUM:
        # More program headers than fit in 16 bits: the real count is section 0's sh_info.
        sh_info_at = e_shoff + (44 if wide else 28)
        (e_phnum,) = _unpack(e + "I", data, sh_info_at)
    segments = _segments(data, e, wide, (e_phoff, e_phentsize, e_phnum))
    interpreter = None
    for seg in segments:
        if seg.kind == PT_INTERP:
            interpreter = _cstring(data, seg.offset, min(len(data), seg.offset + seg.filesz))
    dynamic = next((s for s in segments if s.kind == PT_DYNAMIC), None)
    needed: list[str] = []
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname = None
    if dynamic is not None:
        entries = _dynamic_entries(data, e, wide, dynamic)
        strtab_addr = next((v for t, v in entries if t == DT_STRTAB), None)
        strsz = next((v for t, v in entries if t == DT_STRSZ), None)
        if strtab_addr is None or strsz is None:
            raise ElfError("dynamic section without DT_STRTAB/DT_STRSZ")
        strtab = _file_offset(segments, strtab_addr)
        limit = min(len(data), strtab + strsz)
        for tag, value in entries:
            match tag:
                case 1:  # DT_NEEDED
                    needed.append(_cstring(data, strtab + value, limit))
                case 15:  # DT_RPATH
                    rpath = _split_path(_cstring(data, strtab + value, limit))
                case 29:  # DT_RUNPATH
                    runpath = _split_path(_cstring(data, strtab + value, limit))
                case 14:  # DT_SONAME
                    soname = _cstring(data, strtab + value, limit)
                case _:
                    pass
    return ElfInfo(elf_class, order, e_machine, e_type, interpreter, tuple(needed), rpath, runpath, soname)


def _segments(data: Buffer, e: str, wide: bool, table: tuple[int, int, int]) -> list[_Segment]:
    """The program headers; ``table`` is (e_phoff, e_phentsize, e_phnum)."""
    phoff, phentsize, phnum = table
    out = []
    for i in range(phnum):
        at = phoff + i * phentsize
        if wide:
            kind, _, offset, vaddr, _, filesz, _, _ = _unpack(e + "IIQQQQQQ", data, at)
        else:
            kind, offset, vaddr, _, filesz, _, _, _ = _unpack(e + "IIIIIIII", data, at)
        out.append(_Segment(kind, offset, vaddr, filesz))
    return out


def _dynamic_entries(data: Buffer, e: str, wide: bool, seg: _Segment) -> list[tuple[int, int]]:
    fmt = e + ("qQ" if wide else "iI")
    size = struct.calcsize(fmt)
    out = []
    for at in range(seg.offset, seg.offset + seg.filesz - size + 1, size):
        tag, value = _unpack(fmt, data, at)
        if tag == DT_NULL:
            break
        out.append((tag, value))
    return out


def _file_offset(segments: list[_Segment], vaddr: int) -> int:
    """Map a virtual address (DT_STRTAB holds one) to a file offset through the PT_LOAD segments."""
    for seg in segments:
        if seg.kind == PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
            return vaddr - seg.vaddr + seg.offset
    raise ElfError(f"address {vaddr:#x} is in no loaded segment")


def read_elf_fd(fd: int) -> ElfInfo | None:
    """parse_elf on the open, readable file ``fd``; None for non-ELF files (scripts, data)."""
    if os.pread(fd, 4, 0) != ELF_MAGIC:
        return None
    # Mapped, not read: libraries are megabytes and only their headers are looked at.
    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as data:
        return parse_elf(data)


def read_elf(path: str) -> ElfInfo | None:
    """read_elf_fd on the file at ``path`` (which must not be a symlink)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        return read_elf_fd(fd)
    finally:
        os.close(fd)
