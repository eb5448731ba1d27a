"""Issue 14 #5: a user's deep tree in a migrated directory, and a deeply declared path.

Before: copy, remove, fsync and compare recursed per level, so 1,500 nested directories in a
migrated directory gave "internal error: RecursionError" on every apply (and the mount was
never made), and a 1,200-component declared path did the same to plan (DirCache.get).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from freshroot.fs import bindmount, ops
from tests.fs.helpers import USER, in_child
from tests.persist.helpers import is_mounted, make_root, setup

pytestmark = [pytest.mark.root, pytest.mark.netns]


def _chain(top: Path, depth: int) -> None:
    """``depth`` nested directories ``d`` below ``top``, a file at the bottom, all the user's;
    built through fds (the path is longer than PATH_MAX)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            os.chown("d", USER, USER, dir_fd=fd)
            child = ops.open_dir_at(fd, "d")
            os.close(fd)
            fd = child
        leaf = ops.create_at(fd, "bottom")
        ops.write_all(leaf, b"deep data")
        os.fchown(leaf, USER, USER)
        os.close(leaf)
    finally:
        os.close(fd)


def _bottom(top: Path, depth: int) -> bytes:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            child = ops.open_dir_at(fd, "d")
            os.close(fd)
            fd = child
        return ops.read_at(fd, "bottom")
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ops.remove_tree_at(fd, path.name)
    finally:
        os.close(fd)


def test_a_users_1500_deep_tree_is_migrated_and_bound(scratch: Path) -> None:
    root = make_root(scratch)
    app = root / "var/lib/app"
    app.mkdir(parents=True)
    os.chown(app, USER, USER)
    _chain(app, 1500)

    def body() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        bindmount.unshare_mounts()
        a = setup(root, '[persist."/persist"]\ndirectories = [{ path = "/var/lib/app", migrate = "move", '
                        'user = "alice", group = "alice" }]\n')
        outcome = a.apply()
        assert outcome.ok, outcome
        assert is_mounted(app)
        assert _bottom(root / "persist/var/lib/app", 1500) == b"deep data"
    try:
        in_child(body)
    finally:
        _remove(root / "persist/var/lib/app")
        _remove(app)


def test_plan_resolves_a_declared_path_of_1200_components(scratch: Path) -> None:
    root = make_root(scratch)
    (root / "srv").mkdir()
    _chain(root / "srv", 1199)
    path = "/srv" + "/d" * 1199
    (root / "persist").mkdir(exist_ok=True)
    try:
        a = setup(root, f'[persist."/persist"]\ndirectories = ["{path}"]\n')
        actions = a.plan()
        assert any(path in a.describe() for a in actions)
    finally:
        _remove(root / "srv")
