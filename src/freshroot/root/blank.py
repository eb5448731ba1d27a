"""``freshroot audit --blank``: the root compared with the blank snapshot it was made from.

On a ``wipe = "btrfs"`` root every boot starts as a snapshot of the blank, and a btrfs
snapshot keeps each inode's number and ctime. A file of the root whose inode number, type
and ctime are those of the same path in the blank has not been touched since the blank was
taken: the wipe brings it back as it is, so it is no state to lose. Anything else (new,
replaced, changed in content, owner or mode) is what the next wipe removes unless it is
declared. One lstat in each tree per file, no content is read.

The blank is reached as ``roots`` reaches it (freshroot.root.top: the top level mounted in a
private mount namespace); each directory of it is opened with fs.chase (SAFE), so a symlink
in the blank is never followed out of it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator

from freshroot.config.table import Table
from freshroot.errors import OperationError, UsageError
from freshroot.fs import ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.root.model import parse_root
from freshroot.root.top import root_volume, top_level

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class BlankCompare:
    """``unchanged(directory)``: a test of that directory's entries against the blank. The
    audit walk scans one directory at a time, so one fd of the blank is open at a time."""

    def __init__(self, blank_fd: int) -> None:
        self.blank_fd = blank_fd
        self._fd = -1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __call__(self, path: str) -> Callable[[os.DirEntry[str]], bool] | None:
        self.close()
        try:
            with chase(path or "/", root_fd=self.blank_fd, flags=ChaseFlags.SAFE) as d:
                if path and d.path != path:
                    return None  # a symlink in the blank: not the same directory
                self._fd = ops.reopen(d.fd, _DIR)
        except OSError:
            return None  # not in the blank (or not a directory there): every file is new
        fd = self._fd

        def same(entry: os.DirEntry[str]) -> bool:
            try:
                here = entry.stat(follow_symlinks=False)
                there = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                return False
            return (here.st_ino == there.st_ino and here.st_ctime_ns == there.st_ctime_ns
                    and stat.S_IFMT(here.st_mode) == stat.S_IFMT(there.st_mode))

        return same


@contextlib.contextmanager
def blank_of(declaration: Table, root_fd: int, display: str) -> Iterator[tuple[BlankCompare, str]]:
    """The comparison with the declared blank of the btrfs root at ``root_fd``, and its name."""
    root = parse_root(declaration)
    if root.wipe != "btrfs":
        raise UsageError(f"--blank: [root] wipe = \"{root.wipe}\" has no blank snapshot (only wipe = \"btrfs\")")
    volume = root_volume(root_fd, display)
    with top_level(volume) as (top, _where):
        try:
            blank = chase(root.blank, root_fd=top, flags=ChaseFlags.SAFE)
        except FileNotFoundError:
            raise OperationError(f"the blank snapshot {root.blank!r} of {volume.device} is missing "
                                 "(freshroot install makes it)") from None
        with blank:
            compare = BlankCompare(blank.fd)
            try:
                yield compare, f"the blank snapshot {root.blank}"
            finally:
                compare.close()
