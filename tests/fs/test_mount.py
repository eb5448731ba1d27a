"""mountinfo parsing, and real bind mounts by fd in a private mount namespace."""

from __future__ import annotations

import errno
import os

import pytest

from freshroot.fs import mount
from freshroot.fs.statx import statx_at
from tests.fs.helpers import Root, in_child

SAMPLE = (
    b"36 35 98:0 /mnt1 /mnt/parent\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
    b"37 36 0:5 / /a\\011b\\012c\\134d ro,nosuid shared:7 master:2 - tmp\\040fs my\\040src rw\n"
    b"38 36 0:6 / /x\rcr rw - proc proc rw\n"
)


def test_parse_mountinfo_unescapes() -> None:
    a, b, c = mount.parse_mountinfo(SAMPLE)
    assert (a.mount_id, a.parent_id, a.dev) == (36, 35, os.makedev(98, 0))
    assert (a.root, a.mount_point) == ("/mnt1", "/mnt/parent dir")
    assert a.options == ("rw", "noatime")
    assert a.optional == ("master:1",)
    assert (a.fstype, a.source, a.super_options) == ("ext3", "/dev/root", ("rw", "errors=continue"))
    assert b.mount_point == "/a\tb\nc\\d"
    assert (b.fstype, b.source) == ("tmp fs", "my src")
    assert b.read_only
    assert b.shared
    assert not a.read_only
    assert c.mount_point == "/x\rcr"  # the kernel does not escape \r: not a line break


def test_own_mountinfo_has_the_root() -> None:
    mounts = mount.mountinfo()
    assert any(m.mount_point == "/" for m in mounts)
    root_fd = os.open("/", os.O_PATH)
    try:
        assert mount.find_by_fd(root_fd).mount_point == "/"
    finally:
        os.close(root_fd)


@pytest.mark.root
@pytest.mark.netns
def test_bind_remount_read_only_and_detach(root: Root) -> None:
    root.p("src").mkdir()
    root.p("src/data").write_text("state")
    root.p("dst dir").mkdir()

    def child() -> None:
        mount.unshare_mounts()
        src = os.open(root.p("src"), os.O_PATH)
        dst = os.open(root.p("dst dir"), os.O_PATH)
        mount.bind_fd(src, dst)
        top = os.open(root.p("dst dir"), os.O_PATH)
        info = mount.find_by_fd(top)
        assert info.mount_point == str(root.p("dst dir"))  # unescaped from \040
        assert info.root.endswith("/src")
        assert not info.read_only
        mount.remount_bind(top, read_only=False, extra=mount.MS.NOSUID | mount.MS.NODEV)
        info = mount.find_by_fd(top)
        assert not info.read_only
        assert {"nosuid", "nodev"} <= set(info.options)
        mount.remount_bind(top)  # read-only, and the flags it had are kept
        info = mount.find_by_fd(top)
        assert info.read_only
        assert {"nosuid", "nodev"} <= set(info.options)
        with pytest.raises(OSError, match="Read-only") as e:
            (root.p("dst dir") / "new").write_text("x")
        assert e.value.errno == errno.EROFS
        (root.p("src") / "new").write_text("x")  # the source stays writable
        mount.umount_fd(top)
        assert statx_at(os.open(root.path, os.O_PATH), "dst dir").is_mount_root is False
        assert os.listdir(root.p("dst dir")) == []

    in_child(child)
    # Nothing of it is seen outside the namespace.
    assert os.listdir(root.p("dst dir")) == []
    assert not any(m.mount_point == str(root.p("dst dir")) for m in mount.mountinfo())
