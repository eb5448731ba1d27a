"""Trees with chosen timestamps, for differential tests of the clean phase.

How timestamps are handled (the method the issue asks to write down): atime and mtime are set
exactly with utime(). ctime and btime cannot be set; they are "now" when the tree is built.
So cases either leave b and c out of the age-by letters (e.g. ``am:1h``), or, where they use
the defaults or name c/C/b/B, rely on b/c being *new* with a margin of the whole age (an age of
1h against a tree built seconds ago), so the outcome cannot depend on timing. To make b/c
*old*, a case uses an age of 0: the cutoff is then the tool's start, and every b/c was set
while the tree was built, before the tool started (the kernel's file-time clock never runs
ahead of the real-time clock the tools read). Directories are judged by the statx taken
before the walk enters them, so the ctime that cleaning inside them changes is never read.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOUR = 3600


@dataclass(frozen=True)
class Node:
    path: str  # relative to the root, no leading '/'
    kind: str = "f"  # f file, d dir, l symlink, p fifo, c char device, s stale socket
    age: float = 0  # seconds: atime and mtime are set to now - age
    mode: int | None = None
    target: str = "x"  # symlink target
    uid: int = 0  # owner (uid and gid)


def build(root: Path, nodes: list[Node], now: float | None = None) -> None:
    now = time.time() if now is None else now
    for n in nodes:
        p = root / n.path
        p.parent.mkdir(parents=True, exist_ok=True)
        match n.kind:
            case "f":
                p.write_bytes(b"data\n")
            case "d":
                p.mkdir(exist_ok=True)
            case "l":
                os.symlink(n.target, p)
            case "p":
                os.mkfifo(p)
            case "c":
                os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 3))
            case "s":
                # A socket inode no one listens on (not in /proc/net/unix), as a closed bound
                # socket leaves it; mknod, unlike bind, takes paths over 108 bytes (a long TMPDIR).
                os.mknod(p, stat.S_IFSOCK | 0o600)
            case _:
                raise ValueError(n.kind)
        if n.uid:
            os.lchown(p, n.uid, n.uid)
        if n.mode is not None and n.kind != "l":
            os.chmod(p, n.mode)
    # Times last, deepest first: creating children bumps a directory's mtime.
    for n in sorted(nodes, key=lambda n: n.path.count("/"), reverse=True):
        t = now - n.age
        os.utime(root / n.path, (t, t), follow_symlinks=False)


def build_deep(root: Path, under: str, depth: int, *, age: float, leaf: Node | None = None,
               name: str = "n" * 20, now: float | None = None) -> str:
    """A chain of ``depth`` directories ``name``/``name``/... below ``root/under``, every one with
    atime and mtime now - ``age``, and ``leaf`` (a Node whose path is a single name) in the
    deepest. Built with mkdirat/openat relative to each directory's fd: the paths are longer
    than PATH_MAX. Returns the chain's path relative to the root, as snapshot() names it."""
    now = time.time() if now is None else now
    (root / under).mkdir(parents=True, exist_ok=True)
    fds = [os.open(root / under, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fds[-1])
            fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
        if leaf is not None:
            match leaf.kind:
                case "f":
                    os.close(os.open(leaf.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fds[-1]))
                case "d":
                    os.mkdir(leaf.path, dir_fd=fds[-1])
                case _:
                    raise ValueError(leaf.kind)
            t = now - leaf.age
            os.utime(leaf.path, (t, t), dir_fd=fds[-1])
        t = now - age
        for fd in reversed(fds[1:]):
            os.utime(fd, (t, t))
    finally:
        for fd in fds:
            os.close(fd)
    return "/".join([under, *[name] * depth])


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> type letter, for every entry below root (walked by fd: deep trees too)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root):
        for name in dirnames + filenames:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            out[os.path.relpath(os.path.join(dirpath, name), root)] = stat.filemode(st.st_mode)[0]
    return out


@contextmanager
def listening(path: Path) -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.listen(1)
    try:
        yield s
    finally:
        s.close()
