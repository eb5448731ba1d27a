"""The shared-library closure of ELF files, found the way the dynamic loader finds it.

For each DT_NEEDED name of an object, glibc's ld.so searches, in order: the DT_RPATH of
the object and of the objects that loaded it (only when the object has no DT_RUNPATH),
the DT_RUNPATH of the object itself, its cache (built from /etc/ld.so.conf), and the
default directories. A candidate that is not ELF of the same class, byte order and
machine is skipped, as ld.so skips it. ``$ORIGIN`` is the directory of the object,
``$LIB`` and ``$PLATFORM`` expand as on a multiarch system. The interpreter (PT_INTERP)
is part of the closure too. Nothing is executed: everything comes from reading headers.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections import deque
from dataclasses import dataclass

from freshroot.fs import ops
from freshroot.fs.chase import Chased, chase
from freshroot.image.elf import ELFCLASS64, ElfError, ElfInfo, read_elf_fd

# e_machine -> (multiarch triplet, $PLATFORM) for the architectures Debian builds.
_MULTIARCH = {
    62: ("x86_64-linux-gnu", "x86_64"),
    3: ("i386-linux-gnu", "i686"),
    183: ("aarch64-linux-gnu", "aarch64"),
    40: ("arm-linux-gnueabihf", "v7l"),
    243: ("riscv64-linux-gnu", "riscv64"),
    21: ("powerpc64le-linux-gnu", "power8"),
    22: ("s390x-linux-gnu", "z13"),
}


@dataclass(frozen=True, slots=True)
class Missing:
    """A DT_NEEDED name that resolved nowhere."""

    needed: str
    by: str


@dataclass(frozen=True, slots=True)
class Closure:
    """The shared libraries a set of programs needs, and those not found."""
    files: tuple[str, ...]  # absolute host paths, as ld.so would open them, in discovery order
    missing: tuple[Missing, ...]


def ld_so_conf_dirs(root_fd: int, conf: str = "/etc/ld.so.conf") -> tuple[str, ...]:
    """The directories ``conf`` (below ``root_fd``) names, with its ``include`` globs, in order."""
    out: list[str] = []
    seen: set[str] = set()

    def read(path: str, depth: int) -> None:
        if depth > 10 or path in seen:
            return
        seen.add(path)
        try:
            with chase(path, root_fd=root_fd) as found:
                text = read_regular(found).decode("utf-8", "surrogateescape")
        except OSError:
            return
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("hwcap "):
                continue
            if line.startswith("include") and line[7:8].isspace():
                for pattern in line[8:].split():
                    for included in _glob(root_fd, os.path.join(os.path.dirname(path), pattern)):
                        read(included, depth + 1)
                continue
            for word in line.replace(",", " ").split():
                # "dir=TYPE" is an old libc5 form; the type is irrelevant here.
                d = word.split("=", 1)[0].rstrip("/") or "/"
                if os.path.isabs(d) and d not in out:
                    out.append(d)

    read(conf, 0)
    return tuple(out)


def read_regular(found: Chased) -> bytes:
    """The contents of the regular file ``found`` refers to (anything else: EINVAL)."""
    if not stat.S_ISREG(found.st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", found.path)
    fd = ops.reopen(found.fd, os.O_RDONLY)
    try:
        return ops.read_fd(fd)
    finally:
        os.close(fd)


def _glob(root_fd: int, pattern: str) -> list[str]:
    """ld.so.conf's include globs, which in practice wildcard only the file name."""
    directory, name = os.path.split(pattern)
    try:
        with chase(directory, root_fd=root_fd) as found:
            names = ops.listdir_fd(found.fd)
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names if fnmatch.fnmatchcase(n, name) and not n.startswith(".")]


def default_dirs(info: ElfInfo) -> tuple[str, ...]:
    """ld.so's built-in directories for objects like ``info`` on a multiarch system."""
    triplet, _ = _MULTIARCH.get(info.machine, ("", ""))
    lib = "lib64" if info.elf_class == ELFCLASS64 else "lib"
    dirs = [f"/lib/{triplet}", f"/usr/lib/{triplet}"] if triplet else []
    dirs += [f"/{lib}", f"/usr/{lib}", "/lib", "/usr/lib"]
    return tuple(dict.fromkeys(dirs))


def expand_tokens(entry: str, origin: str, info: ElfInfo) -> str:
    """Expand $ORIGIN, $LIB and $PLATFORM (also in ${...} form) in an rpath entry."""
    triplet, platform = _MULTIARCH.get(info.machine, ("", ""))
    lib = f"lib/{triplet}" if triplet else ("lib64" if info.elf_class == ELFCLASS64 else "lib")
    for token, value in (("ORIGIN", origin), ("LIB", lib), ("PLATFORM", platform)):
        entry = entry.replace("${" + token + "}", value).replace("$" + token, value)
    return entry


class Resolver:
    """Resolve closures in the file system below ``root_fd`` (the host's / by default).

    Every lookup goes through chase, so symlinks (/lib -> usr/lib) resolve inside that root.
    """

    def __init__(self, root_fd: int | None = None, conf_dirs: tuple[str, ...] | None = None) -> None:
        self._owned = root_fd is None
        self.root_fd = ops.open_root("/") if root_fd is None else root_fd
        self.conf_dirs = ld_so_conf_dirs(self.root_fd) if conf_dirs is None else conf_dirs
        self._infos: dict[str, ElfInfo | None] = {}
        self._real: dict[str, str] = {}

    def close(self) -> None:
        if self._owned and self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self, path: str) -> ElfInfo | None:
        """The ELF headers of ``path``; None if it is missing, not a regular file, or not ELF."""
        if path not in self._infos:
            self._infos[path] = None
            try:
                with chase(path, root_fd=self.root_fd) as found:
                    self._real[path] = found.path
                    if stat.S_ISREG(found.st.st_mode):
                        fd = ops.reopen(found.fd, os.O_RDONLY)
                        try:
                            self._infos[path] = read_elf_fd(fd)
                        finally:
                            os.close(fd)
            except (OSError, ElfError):
                pass
        return self._infos[path]

    def realpath(self, path: str) -> str:
        """``path`` with every symlink resolved (below the root), as the kernel gives ld.so $ORIGIN."""
        self.info(path)
        return self._real.get(path, path)

    def find(self, name: str, obj: str, info: ElfInfo, loaders: tuple[tuple[str, ElfInfo], ...]) -> str | None:
        """Where ld.so would find DT_NEEDED ``name`` of ``obj`` (loaded via ``loaders``)."""
        if "/" in name:
            return name if self._fits(name, info) else None
        dirs: list[str] = []
        if not info.runpath:
            # DT_RPATH of this object, then of each object up the chain that loaded it.
            for path, elf in ((obj, info), *reversed(loaders)):
                origin = os.path.dirname(path)
                dirs += [expand_tokens(d, origin, elf) for d in elf.rpath]
        dirs += [expand_tokens(d, os.path.dirname(obj), info) for d in info.runpath]
        dirs += self.conf_dirs
        dirs += default_dirs(info)
        for d in dirs:
            candidate = os.path.normpath(os.path.join(d, name))
            if self._fits(candidate, info):
                return candidate
        return None

    def _fits(self, path: str, info: ElfInfo) -> bool:
        other = self.info(path)
        return other is not None and info.compatible(other)

    def closure(self, roots: list[str]) -> Closure:
        """Every library (and interpreter) the ELF files ``roots`` need, transitively."""
        found: dict[str, None] = {}
        missing: list[Missing] = []
        queue: deque[tuple[str, tuple[tuple[str, ElfInfo], ...]]] = deque()
        for root in roots:
            info = self.info(root)
            if info is None:
                continue
            # The executable's $ORIGIN is its real directory (ld.so takes it from the kernel).
            queue.append((self.realpath(root), ()))
            if info.interpreter and info.interpreter not in found:
                found[info.interpreter] = None
        done: set[str] = set()
        while queue:
            obj, loaders = queue.popleft()
            if obj in done:
                continue
            done.add(obj)
            info = self.info(obj)
            if info is None:
                continue
            for name in info.needed:
                path = self.find(name, obj, info, loaders)
                if path is None:
                    missing.append(Missing(name, obj))
                    continue
                if path not in found:
                    found[path] = None
                queue.append((path, (*loaders, (obj, info))))
        for root in roots:
            found.pop(root, None)
        return Closure(tuple(found), tuple(missing))
