"""Snapshots: what a copy saw of each source file, checked again before the source is removed.

A mover removes a source file once its copy is durable, and must know that the file did not
change since the copy read it. Reading both copies again and comparing them tells it, at the
cost of reading every byte twice more. A snapshot tells it from the file's fstat, where a
change to the data always shows there:

- The copy takes a read lease on the source (granted only while nobody has the file open for
  writing, a writable shared mapping included), copies, and checks that the lease is still
  intact (nobody opened the file for writing meanwhile), that the fstat from before the copy
  is unchanged (size, mtime, ctime) and that the copy has as many bytes. Then the file did
  not change while it was copied, and no fd or mapping that could write to it later was left.
- From then on, every change of the data sets the ctime, which no program can choose: write,
  truncate, fallocate, copy_file_range, and a write through a mapping made after the copy,
  because ext4, XFS and btrfs map a file's pages read-only until written (page_mkwrite
  updates the times). tmpfs does not: a write through a new mapping, read first, leaves every
  time as it was (``tests/persist/test_migrate_snapshot.py`` fails if tmpfs is trusted), so
  on tmpfs, and on every file system not named here, no snapshot is taken and the mover
  compares the bytes.
- The new ctime must differ from the old. Since Linux 6.13 these file systems give a change
  after a stat a fine-grained time (multigrain timestamps). Before, times come from a coarse
  clock (a tick, up to 10 ms; ext4 with 128-byte inodes keeps seconds only), so a file whose
  ctime is less than 2 s before the copy began gets no snapshot (git's "racily clean" rule).

What no snapshot sees: a program that writes without the times changing (root only: XFS's
invisible I/O, or a write to the block device), and a change of the wall clock back by more
than 2 s during the copy that lands a write on the very ctime the file had.
"""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass

from freshroot.fs import _libc

# statfs f_type of the file systems whose every data change sets the ctime (above)
TRUSTED = {0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs"}
RACY_NS = 2_000_000_000  # a ctime this close to the copy's start may be set again unchanged
MOST = 1 << 20  # snapshots kept (~300 bytes each); files beyond are compared byte for byte
MULTIGRAIN = (6, 13)  # the kernel release that gave these file systems multigrain timestamps


@functools.cache
def _multigrain() -> bool:
    found = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return found is not None and (int(found[1]), int(found[2])) >= MULTIGRAIN


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the copy saw of one source file (its size and times) and which inode is its copy."""

    size: int
    mtime_ns: int
    ctime_ns: int
    copy: tuple[int, int]  # the copy's (st_dev, st_ino): a copy replaced since is not taken for it


class Snapshots:
    """The snapshots of one move: taken by the copy (fs.copy), checked by the remover."""

    def __init__(self) -> None:
        self.since = time.time_ns()  # before the first file is looked at
        self._taken: dict[tuple[int, int], Snapshot] = {}
        self._trusted: dict[int, bool] = {}  # st_dev -> on a file system named in TRUSTED

    def worth_taking(self, fd: int, st: os.stat_result) -> bool:
        """Whether the regular file open as ``fd`` (its fstat ``st``) can have a snapshot: a
        trusted file system, a ctime that a later change cannot repeat, and room left."""
        if len(self._taken) >= MOST:
            return False
        trusted = self._trusted.get(st.st_dev)
        if trusted is None:
            try:
                trusted = _libc.statfs_type(fd) in TRUSTED
            except OSError:
                trusted = False
            self._trusted[st.st_dev] = trusted
        if not trusted:
            return False
        # With multigrain timestamps a ctime with nanoseconds cannot be given again after the
        # stat; a whole second may come from a file system that keeps seconds only.
        return (_multigrain() and st.st_ctime_ns % 1_000_000_000 != 0) or st.st_ctime_ns < self.since - RACY_NS

    def take(self, before: os.stat_result, after: os.stat_result, copy: os.stat_result) -> None:
        """Keep the snapshot of a source whose fstat was ``before`` when the copy began and
        ``after`` when it ended, under a lease that stayed intact; ``copy``: the copy's fstat."""
        if _state(before) == _state(after) and copy.st_size == before.st_size:
            self._taken[(before.st_dev, before.st_ino)] = Snapshot(
                before.st_size, before.st_mtime_ns, before.st_ctime_ns, (copy.st_dev, copy.st_ino))

    def unchanged(self, st: os.stat_result, copy: os.stat_result | None) -> bool:
        """Whether the source, whose fstat is ``st`` now (under a read lease), is as it was when
        it was copied, and ``copy`` (an lstat in the destination) is still that copy."""
        snap = self._taken.get((st.st_dev, st.st_ino))
        return (snap is not None and copy is not None and (copy.st_dev, copy.st_ino) == snap.copy
                and copy.st_size == snap.size == st.st_size
                and (st.st_mtime_ns, st.st_ctime_ns) == (snap.mtime_ns, snap.ctime_ns))

    def clear(self) -> None:
        """Drop them all (the copies they name were removed)."""
        self._taken.clear()

    def forget(self, st: os.stat_result) -> None:
        """Drop a source's snapshot (removing one of its hard links changed its ctime)."""
        self._taken.pop((st.st_dev, st.st_ino), None)


def _state(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
