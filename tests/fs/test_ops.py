"""fd-based operations: mkdir_parents, remove_tree_at (with real mounts), special files."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from freshroot.errors import UnsafePathError
from freshroot.fs import mount, ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import (
    chmod_fd,
    chown_fd,
    create_at,
    mkdir_at,
    mkdir_parents,
    open_path_at,
    read_at,
    remove_tree_at,
    reopen,
    write_all,
)
from tests.fs.helpers import OTHER, USER, Root, in_child


def test_mkdir_parents_never_changes_existing_parents(root: Root) -> None:
    root.p("a").mkdir(mode=0o700)
    os.chmod(root.p("a"), 0o701)  # an odd mode that mkdir_parents would never choose
    before = os.stat(root.p("a"))
    old = os.umask(0)
    try:
        with mkdir_parents(root.fd, "a/b/c", 0o750) as c:
            assert c.path == "/a/b/c"
            assert stat.S_ISDIR(os.fstat(c.fd).st_mode)
    finally:
        os.umask(old)
    after = os.stat(root.p("a"))
    assert (after.st_mode, after.st_uid, after.st_gid) == (before.st_mode, before.st_uid, before.st_gid)
    assert stat.S_IMODE(os.stat(root.p("a/b")).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(root.p("a/b/c")).st_mode) == 0o750
    # A second call creates nothing and changes nothing.
    with mkdir_parents(root.fd, "a/b/c", 0o700):
        pass
    assert stat.S_IMODE(os.stat(root.p("a/b/c")).st_mode) == 0o750


def test_mkdir_parents_through_a_symlink_stays_in_the_root(root: Root) -> None:
    root.p("real").mkdir()
    os.symlink("/real", root.p("link"))
    with mkdir_parents(root.fd, "link/x/y", flags=ChaseFlags.NONE) as c:
        assert c.path == "/real/x/y"
    assert root.p("real/x/y").is_dir()


def test_mkdir_parents_refuses_a_file_in_the_way(root: Root) -> None:
    root.p("a").mkdir()
    root.p("a/f").write_text("")
    with pytest.raises(NotADirectoryError):
        mkdir_parents(root.fd, "a/f/x")
    with pytest.raises(FileNotFoundError):
        mkdir_parents(root.fd, "a/missing/../f")  # rest with '..': never created blindly
    assert not root.p("a/missing").exists()


@pytest.mark.root
def test_mkdir_parents_safe_refuses_a_planted_link(root: Root) -> None:
    root.p("home/u").mkdir(parents=True)
    root.p("etc").mkdir()
    os.chown(root.p("home/u"), USER, USER)
    home = os.open(root.p("home/u"), os.O_PATH)
    try:
        in_child(lambda: os.symlink("/etc", "cfg", dir_fd=home), uid=USER)
    finally:
        os.close(home)
    with pytest.raises(UnsafePathError):
        mkdir_parents(root.fd, "home/u/cfg/evil")
    assert not root.p("etc/evil").exists()


def test_remove_tree_never_follows_symlinks(root: Root, scratch: Path) -> None:
    outside = scratch / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep/file").write_text("precious")
    tree = root.p("tree")
    (tree / "sub").mkdir(parents=True)
    os.symlink(str(outside), tree / "abs")
    os.symlink("../../outside/keep", tree / "sub/rel")
    os.symlink(str(outside / "keep/file"), tree / "filelink")
    os.mkfifo(tree / "fifo")
    os.mknod(tree / "sock", stat.S_IFSOCK | 0o600)
    os.link(outside / "keep/file", tree / "hard")
    remove_tree_at(root.fd, "tree")
    assert not tree.exists()
    assert (outside / "keep/file").read_text() == "precious"
    assert os.stat(outside / "keep/file").st_nlink == 1


def test_remove_tree_of_a_plain_file_or_symlink(root: Root) -> None:
    root.p("dir").mkdir()
    os.symlink("dir", root.p("link"))
    remove_tree_at(root.fd, "link")  # removes the link, not the directory it points to
    assert root.p("dir").is_dir()
    assert not root.p("link").is_symlink()


@pytest.mark.root
@pytest.mark.netns
def test_remove_tree_never_crosses_mounts(root: Root, scratch: Path) -> None:
    source = scratch / "source"
    source.mkdir()
    (source / "state").write_text("persisted")
    tree = root.p("tree")
    for d in ("a/bound", "a/tmpfs", "b"):
        (tree / d).mkdir(parents=True)
    (tree / "b/file").write_text("x")

    def child() -> None:
        mount.unshare_mounts()
        # fds opened before unshare() see the old namespace's mounts: open the root anew.
        root_fd = os.open(root.path, os.O_PATH | os.O_DIRECTORY)
        src = os.open(source, os.O_PATH)
        dst = os.open(tree / "a/bound", os.O_PATH)
        mount.bind_fd(src, dst)  # same file system: st_dev cannot tell, the mount id can
        mount.mount("tmpfs", str(tree / "a/tmpfs"), "tmpfs", mount.MS.NOSUID)
        (tree / "a/tmpfs/t").write_text("t")
        with pytest.raises(OSError, match="mount point") as e:
            remove_tree_at(root_fd, "tree")
        assert e.value.errno == errno.EBUSY
        assert (tree / "a/bound/state").read_text() == "persisted"
        assert (tree / "a/tmpfs/t").read_text() == "t"
        assert not (tree / "b").exists()  # everything else is gone
        assert sorted(os.listdir(tree / "a")) == ["bound", "tmpfs"]
        # The top itself a mount point: refused before anything is removed.
        (tree / "b").mkdir()
        mount.bind_fd(src, os.open(tree / "b", os.O_PATH))
        with pytest.raises(OSError, match="mount point"):
            remove_tree_at(os.open(tree, os.O_PATH), "b")
        assert (source / "state").exists()

    in_child(child)
    assert (source / "state").read_text() == "persisted"


@pytest.mark.root
@pytest.mark.netns
def test_remove_contents_one_device_leaves_mounts_and_goes_on(root: Root, scratch: Path) -> None:
    """systemd's rm_rf_children with a root device: mount points (a bind mount of the same
    file system too) stay without a word, everything else goes, the first failure comes last."""
    source = scratch / "source"
    source.mkdir()
    (source / "state").write_text("persisted")
    tree = root.p("tree")
    for d in ("a/bound", "a/tmpfs", "b/c", "z"):
        (tree / d).mkdir(parents=True)
    for f in ("a/f", "b/c/f", "z/f", "top"):
        (tree / f).write_text("x")

    def child() -> None:
        mount.unshare_mounts()
        root_fd = os.open(root.path, os.O_PATH | os.O_DIRECTORY)
        mount.bind_fd(os.open(source, os.O_PATH), os.open(tree / "a/bound", os.O_PATH))
        mount.mount("tmpfs", str(tree / "a/tmpfs"), "tmpfs", mount.MS.NOSUID)
        tree_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
        assert ops.is_mount_point_at(tree_fd, "a") is False
        a_fd = os.open(tree / "a", os.O_PATH | os.O_DIRECTORY)
        assert ops.is_mount_point_at(a_fd, "bound")
        assert ops.is_mount_point_at(a_fd, "tmpfs")
        with pytest.raises(OSError, match="not empty") as e:
            ops.remove_contents_one_device(root_fd, "tree")
        assert e.value.errno == errno.ENOTEMPTY  # "a" kept its mount points
        assert sorted(os.listdir(tree)) == ["a"]  # the entries after "a" went all the same
        assert sorted(os.listdir(tree / "a")) == ["bound", "tmpfs"]
        assert (tree / "a/bound/state").read_text() == "persisted"

    in_child(child)


@pytest.mark.root
def test_chown_and_chmod_through_o_path_on_special_files(root: Root) -> None:
    os.mkfifo(root.p("fifo"))
    os.mknod(root.p("null"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mknod(root.p("sock"), stat.S_IFSOCK | 0o600)
    root.p("file").write_text("x")
    os.link(root.p("file"), root.p("hard"))
    os.symlink("file", root.p("link"))
    for name in ("fifo", "null", "sock", "file"):
        fd = open_path_at(root.fd, name)
        try:
            chown_fd(fd, USER, OTHER)
            chmod_fd(fd, 0o640)
        finally:
            os.close(fd)
        st = os.stat(root.p(name), follow_symlinks=False)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (USER, OTHER, 0o640), name
    assert os.stat(root.p("hard")).st_uid == USER  # the same inode
    fd = open_path_at(root.fd, "link")
    try:
        chown_fd(fd, OTHER, OTHER)  # the link itself, not its target
        with pytest.raises(OSError, match="symbolic link"):
            chmod_fd(fd, 0o600)
        with pytest.raises(OSError, match="symbolic link"):
            reopen(fd, os.O_RDONLY)
    finally:
        os.close(fd)
    assert os.lstat(root.p("link")).st_uid == OTHER
    assert os.stat(root.p("file")).st_uid == USER


def test_create_at_refuses_symlinks_and_existing_files(root: Root, scratch: Path) -> None:
    target = scratch / "target"
    target.write_text("untouched")
    os.symlink(str(target), root.p("link"))
    with pytest.raises(FileExistsError):
        create_at(root.fd, "link")
    with pytest.raises(OSError, match=os.strerror(errno.ELOOP)):
        create_at(root.fd, "link", exclusive=False)
    assert target.read_text() == "untouched"
    fd = create_at(root.fd, "new", 0o600)
    try:
        write_all(fd, b"hello")
    finally:
        os.close(fd)
    assert read_at(root.fd, "new") == b"hello"
    with pytest.raises(OSError, match=os.strerror(errno.ELOOP)):
        read_at(root.fd, "link")
    for bad in ("a/b", "..", ".", ""):
        with pytest.raises(ValueError, match="single path component"):
            mkdir_at(root.fd, bad)


def test_reopen_a_fifo_without_blocking(root: Root) -> None:
    os.mkfifo(root.p("fifo"))
    with chase("fifo", root_fd=root.fd) as c:
        fd = reopen(c.fd, os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert stat.S_ISFIFO(os.fstat(fd).st_mode)
        finally:
            os.close(fd)


@pytest.mark.root
def test_mkdir_parents_vets_a_directory_that_appeared_meanwhile(root: Root, monkeypatch) -> None:
    """Between chase() and mkdirat another user makes the directory: SAFE refuses to use it."""
    shared = root.p("shared")
    shared.mkdir()
    os.chown(shared, USER, USER)
    shared.chmod(0o1777)
    real_mkdir_at = ops.mkdir_at

    def racing_mkdir_at(dir_fd: int, name: str, mode: int = 0o755) -> bool:
        in_child(lambda: os.mkdir(name, dir_fd=dir_fd), uid=OTHER)  # the other user wins the race
        return real_mkdir_at(dir_fd, name, mode)

    monkeypatch.setattr(ops, "mkdir_at", racing_mkdir_at)
    with pytest.raises(UnsafePathError, match="appeared while being created"):
        mkdir_parents(root.fd, "shared/x/y")
    assert not root.p("shared/x/y").exists()
    monkeypatch.setattr(ops, "mkdir_at", real_mkdir_at)
    with mkdir_parents(root.fd, "shared/x/y", flags=ChaseFlags.NONE) as c:  # without SAFE it is used
        assert c.path == "/shared/x/y"


def test_atomic_temp_name_fits_name_max(root: Root) -> None:
    from freshroot.fs.atomic import replace_at, temp_name

    name = "é" * 127  # 254 bytes
    assert len(os.fsencode(temp_name(name))) <= 255
    replace_at(root.fd, name, b"x", durable=False)
    assert root.p(name).read_bytes() == b"x"
