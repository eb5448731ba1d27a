"""chase() against the kernel's own in-root resolution, openat2(RESOLVE_IN_ROOT), on generated trees.

openat2 with RESOLVE_IN_ROOT resolves a path as if the directory fd were "/" (absolute
symlinks restart there, ".." stops there), which is exactly what chase() without SAFE
promises. Random trees of directories, files and symlinks (to names, "..", absolute
paths, themselves) and random paths through them must resolve to the same inode, or fail
with the same errno, in both.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshroot.fs.chase import ChaseFlags, chase

SYS_OPENAT2 = 437  # the same number on every architecture (new syscalls are unified)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


_libc = ctypes.CDLL(None, use_errno=True)


def openat2_in_root(root_fd: int, path: str, *, nofollow: bool) -> int:
    how = _OpenHow(os.O_PATH | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0), 0,
                   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(SYS_OPENAT2, root_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


NAMES = ["a", "b", "c"]
component = st.sampled_from([*NAMES, "..", "."])
rel_path = st.lists(component, min_size=1, max_size=5).map("/".join)
link_target = st.one_of(rel_path, rel_path.map(lambda p: "/" + p), st.just("/"), st.just(".."))
entry = st.one_of(st.just(("dir", "")), st.just(("file", "")), link_target.map(lambda t: ("link", t)))
# A tree: for each of a, a/b, ..., what it is (directories get children).
tree = st.dictionaries(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join), entry,
                       min_size=1, max_size=12)


def build(top: str, spec: dict[str, tuple[str, str]]) -> None:
    for rel in sorted(spec, key=lambda r: r.count("/")):
        kind, target = spec[rel]
        parts = rel.split("/")
        ancestors = [os.path.join(top, *parts[:i]) for i in range(1, len(parts))]
        if not all(os.path.isdir(a) and not os.path.islink(a) for a in ancestors):
            continue  # a parent is not a real directory: the entry cannot exist
        path = os.path.join(top, rel)
        if kind == "dir":
            os.mkdir(path)
        elif kind == "file":
            with open(path, "w"):
                pass
        else:
            os.symlink(target, path)


def resolve(fn: object, *args: object, **kwargs: object) -> tuple[str, object]:
    try:
        fd = fn(*args, **kwargs)  # type: ignore[operator]
    except OSError as e:
        return ("error", e.errno)
    if not isinstance(fd, int):
        fd = fd.detach()
    try:
        st_ = os.fstat(fd)
        return ("ok", (st_.st_dev, st_.st_ino, stat.S_IFMT(st_.st_mode)))
    finally:
        os.close(fd)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=tree, nofollow=st.booleans(),
       paths=st.lists(st.tuples(st.sampled_from(["", "/", "//"]), rel_path, st.sampled_from(["", "/", "/."]))
                      .map("".join), min_size=1, max_size=6))
def test_chase_resolves_as_openat2_resolve_in_root(spec, paths, nofollow) -> None:
    top = tempfile.mkdtemp(prefix="chase-kernel-")
    try:
        build(top, spec)
        root_fd = os.open(top, os.O_PATH | os.O_DIRECTORY)
        try:
            flags = ChaseFlags.NOFOLLOW if nofollow else ChaseFlags.NONE
            for path in paths:
                ours = resolve(chase, path, root_fd=root_fd, flags=flags)
                kernel = resolve(openat2_in_root, root_fd, path, nofollow=nofollow)
                assert ours == kernel, (path, spec)
        finally:
            os.close(root_fd)
    finally:
        shutil.rmtree(top)


def test_openat2_is_available() -> None:
    fd = os.open("/", os.O_PATH)
    try:
        try:
            os.close(openat2_in_root(fd, "etc", nofollow=False))
        except OSError as e:
            if e.errno == errno.ENOSYS:
                pytest.skip("kernel without openat2 (before 5.6)")
            raise
    finally:
        os.close(fd)
