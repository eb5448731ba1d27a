"""Deep trees, FIFOs swapped in, and the fd budget: the walks of freshroot.fs (issue 14, #4 and #5).

Every tree walk is iterative and holds a bounded number of fds, so a user's 3,000-deep tree
neither ends in RecursionError nor runs the process out of fds; and every regular file is
opened non-blocking and checked on its fd, so a FIFO swapped in by a user on another CPU
cannot put root to sleep in open(2).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import resource
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from freshroot.fs import durable, ops
from freshroot.fs.copy import copy_tree_at
from freshroot.fs.walk import DirStack
from freshroot.persist.dircache import DirCache
from tests.fs.helpers import USER, in_child

pytestmark = pytest.mark.root

FD_LIMIT = 256  # far fewer fds than the trees below have levels


def _open_dir(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _deep(dir_fd: int, name: str, depth: int) -> None:
    """``name/d/d/.../d/leaf`` (``depth`` directories), built through fds: the path is longer
    than PATH_MAX."""
    os.mkdir(name, dir_fd=dir_fd)
    fd = ops.open_dir_at(dir_fd, name)
    try:
        for _ in range(depth - 1):
            os.mkdir("d", dir_fd=fd)
            child = ops.open_dir_at(fd, "d")
            os.close(fd)
            fd = child
        leaf = ops.create_at(fd, "leaf")
        ops.write_all(leaf, b"bottom")
        os.close(leaf)
        os.symlink("/etc/shadow", "link", dir_fd=fd)
        os.mkfifo("fifo", dir_fd=fd)
    finally:
        os.close(fd)


def _bottom(dir_fd: int, name: str, depth: int) -> os.stat_result:
    fd = ops.open_dir_at(dir_fd, name)
    try:
        for _ in range(depth - 1):
            child = ops.open_dir_at(fd, "d")
            os.close(fd)
            fd = child
        return os.stat("leaf", dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


@pytest.mark.parametrize("depth", [1500, 3000])
def test_deep_trees_are_copied_compared_synced_and_removed(scratch: Path, depth: int) -> None:
    """Before: RecursionError from copy_tree_at, fsync_tree_at, contained_at and remove_tree_at."""
    def body() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
        base = _open_dir(scratch)
        _deep(base, "src", depth)
        report = copy_tree_at(base, "src", base, "copy")
        assert report.copied == depth + 3  # the directories, the file, the symlink, the FIFO
        durable.fsync_tree_at(base, "copy")
        assert durable.contained_at(base, "src", base, "copy")
        st = _bottom(base, "copy", depth)
        assert (st.st_size, stat.S_ISREG(st.st_mode)) == (6, True)
        ops.remove_tree_at(base, "src")
        assert not durable.contained_at(base, "copy", base, "src")
        ops.remove_contents_one_device(base, "copy")
        assert os.listdir(base) == ["copy"]
        os.rmdir("copy", dir_fd=base)
        os.close(base)
    in_child(body)


def test_dircache_resolves_a_path_of_1200_components(scratch: Path) -> None:
    """Before: RecursionError from DirCache.get (one call per component)."""
    root = scratch / "root"
    root.mkdir()
    fd = ops.open_root(str(root))
    try:
        _deep(fd, "a", 1200)
        cache = DirCache(fd)
        path = "/a" + "/d" * 1199
        got = cache.get(path)
        assert os.stat("leaf", dir_fd=got).st_size == 6
        cache.invalidate("/a")  # everything below goes too, without recursion
        assert list(cache.fds) == ["/"]
        cache.close()
        ops.remove_tree_at(fd, "a")
    finally:
        os.close(fd)


def test_dirstack_reopens_closed_levels_and_notices_a_move(scratch: Path) -> None:
    """Only ``budget`` fds stay open; a closed level comes back as '..' of the one below, and
    a directory moved meanwhile fails with ESTALE instead of walking somewhere else."""
    (scratch / "t/a/b/c/d").mkdir(parents=True)
    base = _open_dir(scratch)
    dirs = DirStack(base, budget=2)
    for name in ("t", "a", "b", "c", "d"):
        dirs.push(name)
    assert sum(1 for lvl in dirs.levels[1:] if lvl.fd >= 0) == 2
    dirs.pop()
    dirs.pop()
    assert dirs.path() == "t/a/b"
    assert os.listdir(dirs.fd()) == ["c"]
    dirs.push("c")
    dirs.push("d")  # b is closed again
    (scratch / "t/a/b/c").rename(scratch / "t/c")  # c is no longer in b
    dirs.pop()
    with pytest.raises(OSError, match="moved while being walked"):
        dirs.pop()  # '..' of c is now t, not the b the walk came through
    dirs.close()
    os.close(base)


# --- a FIFO swapped in for a regular file, by the user, on another CPU ---------------------

RENAME_EXCHANGE = 2


def _attacker(directory: Path, a: str, b: str, stop_after: float) -> int:
    """Fork an unprivileged process (uid 1000) on CPU 1 exchanging ``a`` and ``b`` in a loop."""
    dir_fd = _open_dir(directory)  # opened as root: the scratch's parents are root's 0700
    pid = os.fork()
    if pid == 0:
        ok = 0
        try:
            os.sched_setaffinity(0, {1})
            os.setgroups([])
            os.setresgid(USER, USER, USER)
            os.setresuid(USER, USER, USER)
            libc = ctypes.CDLL(None, use_errno=True)
            x, y = os.fsencode(a), os.fsencode(b)
            end = time.monotonic() + stop_after
            while time.monotonic() < end:
                for _ in range(1000):
                    ok += libc.renameat2(dir_fd, x, dir_fd, y, RENAME_EXCHANGE) == 0
        finally:
            os._exit(0 if ok else 1)
    os.close(dir_fd)
    return pid


def _finishes(fn: Callable[[], None], timeout: float) -> bool:
    """Run ``fn`` in a forked child on CPU 0; False if it has not finished after ``timeout``
    (then it is killed, by its pid). Its failure fails the caller."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.sched_setaffinity(0, {0})
            fn()
        except BaseException:  # noqa: BLE001 - reported through the exit status
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, "the operation failed (see its traceback)"
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


def _sums(top: Path) -> dict[str, str]:
    out = {}
    for p in sorted(top.rglob("*")):
        if p.is_file() and not p.is_symlink() and stat.S_ISREG(p.lstat().st_mode):
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_fifo_swapped_in_never_blocks_copy_fsync_or_compare(scratch: Path) -> None:
    """A user exchanges a file and a FIFO (renameat2 RENAME_EXCHANGE) in their directory while
    root copies, fsyncs and compares it, over and over. Before: stat then a blocking open, and
    the copy slept in open(2) forever (the test timed out). Now every round finishes (a round
    that met the swap fails cleanly with EAGAIN), and no regular file changed."""
    data = scratch / "home"
    data.mkdir()
    for i in range(8):
        (data / f"file{i}").write_bytes(os.urandom(4096))
    os.mkfifo(data / "pipe")
    for p in [data, *data.iterdir()]:
        os.chown(p, USER, USER)
    before = _sums(data)
    out = scratch / "out"
    out.mkdir()

    def rounds() -> None:
        base = _open_dir(scratch)
        dst = ops.open_dir_at(base, "out")
        end = time.monotonic() + 4
        i = 0
        failures: list[str] = []
        while time.monotonic() < end:
            name = f"c{i}"
            i += 1
            try:
                copy_tree_at(base, "home", dst, name)
                durable.fsync_tree_at(dst, name)
                durable.contained_at(base, "home", dst, name)
                durable.contained_at(dst, name, base, "home")
            except OSError as e:  # the swap was seen: this round fails cleanly
                failures.append(str(e))
            ops.remove_tree_at(dst, name)
        unexpected = [f for f in failures if "changed while being" not in f and "no longer a regular" not in f]
        assert unexpected == []

    attacker = _attacker(data, "file0", "pipe", 6)
    try:
        assert _finishes(rounds, 30), "a FIFO swapped in blocked the copy"
    finally:
        _, status = os.waitpid(attacker, 0)  # it stops by itself, after its time
    assert os.waitstatus_to_exitcode(status) == 0, "the attacker never managed an exchange"
    assert _sums(data) == before
    assert os.listdir(out) == []
