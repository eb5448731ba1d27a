"""chase() on adversarial trees: planted symlinks, '..', swaps, loops, odd names and lengths."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from freshroot.errors import UnsafePathError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import create_at, listdir_fd, mkdir_at, open_path_at, readlink_fd
from tests.fs.helpers import USER, Root, in_child

F = ChaseFlags


def same_inode(fd: int, path: object) -> bool:
    a, b = os.fstat(fd), os.stat(str(path), follow_symlinks=False)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@pytest.fixture
def planted(root: Root) -> Root:
    """A root-owned tree with a user's home and a sticky /tmp, where the user (really running
    as uid 1000) planted symlinks to root-owned files, absolute and relative."""
    for d in ("etc", "home", "tmp"):
        root.p(d).mkdir()
    root.p("etc/secret").write_text("root only\n")
    root.p("home/u").mkdir()
    os.chown(root.p("home/u"), USER, USER)
    root.p("tmp").chmod(0o1777)
    home = os.open(root.p("home/u"), os.O_PATH | os.O_DIRECTORY)
    tmp = os.open(root.p("tmp"), os.O_PATH | os.O_DIRECTORY)

    def plant() -> None:
        os.symlink("/etc/secret", "abs", dir_fd=home)
        os.symlink("../../etc/secret", "rel", dir_fd=home)
        os.symlink("/etc", "etcdir", dir_fd=home)
        os.mkdir("own", dir_fd=home)
        os.symlink("own", "ownlink", dir_fd=home)
        with open(os.open("own/file", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=home), "w") as f:
            f.write("mine")
        os.symlink("/etc/secret", "abs", dir_fd=tmp)
        os.symlink("../etc/secret", "rel", dir_fd=tmp)

    try:
        in_child(plant, uid=USER)
    finally:
        os.close(home)
        os.close(tmp)
    assert os.lstat(root.p("home/u/abs")).st_uid == USER
    return root


@pytest.mark.root
@pytest.mark.parametrize("path", ["home/u/abs", "home/u/rel", "home/u/etcdir/secret", "tmp/abs", "tmp/rel"])
def test_safe_refuses_user_planted_symlink_to_root_file(planted: Root, path: str) -> None:
    with pytest.raises(UnsafePathError, match="unprivileged user"):
        chase(path, root_fd=planted.fd, flags=F.SAFE)


@pytest.mark.root
def test_the_refusal_names_the_step_and_both_owners(planted: Root) -> None:
    """home/u/etcdir is the user's symlink to /etc: the step refused goes from it (uid USER) to
    root's /etc (uid 0), and the message says which entry is whose."""
    with pytest.raises(UnsafePathError) as refused:
        chase("home/u/etcdir/secret", root_fd=planted.fd, flags=F.SAFE)
    message = str(refused.value)
    assert message.startswith("home/u/etcdir/secret: refusing to follow ")
    assert (f"the entry before it is owned by an unprivileged user (uid {USER}) and it by someone "
            "else (uid 0)") in message


@pytest.mark.root
@pytest.mark.parametrize("path", ["home/u/own/file", "home/u/ownlink/file", "home/u/ownlink"])
def test_safe_allows_a_user_staying_within_their_own_files(planted: Root, path: str) -> None:
    with chase(path, root_fd=planted.fd, flags=F.SAFE) as c:
        assert same_inode(c.fd, planted.p("home/u/own" + ("/file" if path.endswith("file") else "")))


@pytest.mark.root
@pytest.mark.parametrize("path", ["home/u/abs", "home/u/rel", "tmp/abs", "tmp/rel", "home/u/etcdir/secret"])
def test_without_safe_links_resolve_inside_the_root(planted: Root, path: str) -> None:
    with chase(path, root_fd=planted.fd) as c:
        assert c.path == "/etc/secret"
        assert same_inode(c.fd, planted.p("etc/secret"))  # the root's, never the host's /etc


@pytest.mark.root
def test_safe_refuses_dotdot_out_of_a_user_directory(planted: Root) -> None:
    with pytest.raises(UnsafePathError):
        chase("home/u/own/../../../etc/secret", root_fd=planted.fd, flags=F.SAFE)
    with chase("home/u/own/../../../etc/secret", root_fd=planted.fd) as c:
        assert c.path == "/etc/secret"


def test_dotdot_and_absolute_links_never_escape(root: Root) -> None:
    root.p("a/b").mkdir(parents=True)
    root.p("etc").mkdir()
    root.p("etc/passwd").write_text("inside\n")
    os.symlink("../../../../../../..", root.p("a/b/up"))
    os.symlink("/../../etc", root.p("a/abs"))
    os.symlink("/", root.p("a/slash"))
    for path in ("../../../etc/passwd", "/../etc/passwd", "a/b/up/etc/passwd", "a/abs/passwd",
                 "a/slash/../../etc/passwd", "a/b/../../../a/../etc/./passwd"):
        with chase(path, root_fd=root.fd) as c:
            assert c.path == "/etc/passwd", path
            assert same_inode(c.fd, root.p("etc/passwd")), path
    with chase("a/b/up", root_fd=root.fd) as c:
        assert c.path == "/"
        assert same_inode(c.fd, root.path)


def test_held_fd_is_unaffected_by_a_swap(root: Root, scratch: object) -> None:
    root.p("data").mkdir()
    outside = root.path.parent / "outside"
    outside.mkdir()
    with chase("data", root_fd=root.fd) as c:
        # Between two calls someone moves the directory away and plants a symlink out of the root.
        os.rename(root.p("data"), root.p("moved"))
        os.symlink(str(outside), root.p("data"))
        os.close(create_at(c.fd, "new"))
        assert mkdir_at(c.fd, "sub")
        assert listdir_fd(c.fd) == ["new", "sub"]
    assert sorted(os.listdir(root.p("moved"))) == ["new", "sub"]
    assert os.listdir(outside) == []
    # A new chase sees the symlink, and resolves it inside the root (where nothing is).
    with pytest.raises(FileNotFoundError):
        chase("data/new", root_fd=root.fd)


def test_symlink_loops_give_eloop(root: Root) -> None:
    os.symlink("b", root.p("a"))
    os.symlink("a", root.p("b"))
    os.symlink("self", root.p("self"))
    for path in ("a", "self/x"):
        with pytest.raises(OSError, match=os.strerror(errno.ELOOP)) as e:
            chase(path, root_fd=root.fd)
        assert e.value.errno == errno.ELOOP
    # NOFOLLOW returns the link itself, unless a trailing "/" or "/." asks for its target.
    with chase("a", root_fd=root.fd, flags=F.NOFOLLOW) as c:
        assert stat.S_ISLNK(os.fstat(c.fd).st_mode)
        assert readlink_fd(c.fd) == "b"
    for path in ("a/", "a/."):
        with pytest.raises(OSError, match=os.strerror(errno.ELOOP)):
            chase(path, root_fd=root.fd, flags=F.NOFOLLOW)


@pytest.mark.parametrize("path", ["file/x", "file/..", "file/", "file/.", "link2file/", "dir/file/x"])
def test_non_directories_in_the_middle_give_enotdir(root: Root, path: str) -> None:
    root.p("file").write_text("x")
    root.p("dir").mkdir()
    root.p("dir/file").write_text("x")
    os.symlink("file", root.p("link2file"))
    with pytest.raises(NotADirectoryError):
        chase(path, root_fd=root.fd)


def test_nonexistent_returns_existing_prefix_and_rest(root: Root) -> None:
    root.p("a").mkdir()
    os.symlink("/a/gone", root.p("dangling"))
    with chase("a/missing/deeper", root_fd=root.fd, flags=F.NONEXISTENT) as c:
        assert (c.path, c.rest) == ("/a", "missing/deeper")
        assert same_inode(c.fd, root.p("a"))
    with chase("dangling/x", root_fd=root.fd, flags=F.NONEXISTENT) as c:
        assert (c.path, c.rest) == ("/a", "gone/x")
    with chase("a", root_fd=root.fd, flags=F.NONEXISTENT) as c:
        assert (c.path, c.rest) == ("/a", "")
    # A missing tail that climbs back with ".." names nothing: ENOENT, as systemd.
    with pytest.raises(FileNotFoundError):
        chase("a/missing/../x", root_fd=root.fd, flags=F.NONEXISTENT)
    with pytest.raises(FileNotFoundError):
        chase("a/missing", root_fd=root.fd)


def test_parent_returns_the_directory_and_the_name(root: Root) -> None:
    root.p("a/b").mkdir(parents=True)
    root.p("file").write_text("x")
    os.symlink("a/b", root.p("lb"))
    with chase("lb/new", root_fd=root.fd, flags=F.PARENT) as c:
        assert (c.path, c.rest) == ("/a/b", "new")
        assert same_inode(c.fd, root.p("a/b"))
    with chase("a/missing/new", root_fd=root.fd, flags=F.PARENT | F.NONEXISTENT) as c:
        assert (c.path, c.rest) == ("/a", "missing/new")
    with pytest.raises(NotADirectoryError):
        chase("file/new", root_fd=root.fd, flags=F.PARENT)
    for bad in ("/", "a/.."):
        with pytest.raises(OSError, match="names no entry") as e:
            chase(bad, root_fd=root.fd, flags=F.PARENT)
        assert e.value.errno == errno.EINVAL


def test_special_files_and_hard_links(root: Root) -> None:
    root.p("file").write_text("data")
    os.link(root.p("file"), root.p("hard"))
    os.mkfifo(root.p("fifo"))
    os.mknod(root.p("sock"), stat.S_IFSOCK | 0o600)
    with chase("file", root_fd=root.fd) as a, chase("hard", root_fd=root.fd) as b:
        assert os.path.samestat(os.fstat(a.fd), os.fstat(b.fd))
    # O_PATH opens a FIFO without blocking and without a writer.
    with chase("fifo", root_fd=root.fd) as c:
        assert stat.S_ISFIFO(os.fstat(c.fd).st_mode)
    with chase("sock", root_fd=root.fd) as c:
        assert stat.S_ISSOCK(os.fstat(c.fd).st_mode)
    with pytest.raises(NotADirectoryError):
        chase("fifo/x", root_fd=root.fd)


@pytest.mark.root
def test_device_nodes(root: Root) -> None:
    os.mknod(root.p("null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root.p("loop"), stat.S_IFBLK | 0o600, os.makedev(7, 0))
    with chase("null", root_fd=root.fd) as c:
        assert os.fstat(c.fd).st_rdev == os.makedev(1, 3)
    with chase("loop", root_fd=root.fd) as c:
        assert stat.S_ISBLK(os.fstat(c.fd).st_mode)


def make_deep(root: Root, depth: int, name: str) -> int:
    """mkdirat a chain ``depth`` deep; return an O_PATH fd on the deepest directory."""
    fd = os.dup(root.fd)
    for _ in range(depth):
        mkdir_at(fd, name)
        child = open_path_at(fd, name)
        os.close(fd)
        fd = child
    return fd


def test_paths_longer_than_path_max(root: Root) -> None:
    name = "d" * 100
    depth = 50  # 5050 bytes > PATH_MAX (4096)
    bottom = make_deep(root, depth, name)
    try:
        os.close(create_at(bottom, "leaf"))
    finally:
        os.close(bottom)
    path = "/".join([name] * depth) + "/leaf"
    assert len(path) > os.pathconf("/", "PC_PATH_MAX")
    with pytest.raises(OSError, match=os.strerror(errno.ENAMETOOLONG)) as e:
        os.stat(str(root.path / path))
    assert e.value.errno == errno.ENAMETOOLONG
    with chase(path, root_fd=root.fd) as c:
        assert c.path == "/" + path
        assert stat.S_ISREG(os.fstat(c.fd).st_mode)
    # A symlink deep down pointing back to the top resolves too.
    with chase("/".join([name] * depth), root_fd=root.fd) as c:
        os.symlink("/" + name, "up", dir_fd=c.fd)
    with chase("/".join([name] * depth) + "/up", root_fd=root.fd) as c:
        assert c.path == "/" + name


def test_names_that_are_not_utf8(root: Root) -> None:
    raw = b"caf\xe9-\xff"
    name = os.fsdecode(raw)  # a surrogateescape str
    assert mkdir_at(root.fd, name)
    os.symlink(os.fsdecode(b"/" + raw), root.p("link"))
    with chase(f"link/{name}", root_fd=root.fd, flags=F.NONEXISTENT) as c:
        assert (c.path, c.rest) == (f"/{name}", name)
        os.close(create_at(c.fd, name))
    assert os.listdir(os.fsencode(root.path / name)) == [raw]
    assert listdir_fd(root.fd) == sorted([name, "link"])


def test_result_path_is_canonical(root: Root) -> None:
    root.p("a/b").mkdir(parents=True)
    os.symlink("b", root.p("a/lb"))
    with chase("//a/./lb///", root_fd=root.fd) as c:
        assert c.path == "/a/b"
    with chase("", root_fd=root.fd) as c:
        assert c.path == "/"
