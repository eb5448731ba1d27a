"""replace_at: readers and crashes see the old content or the new, never a mix."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest

from freshroot.fs.atomic import replace_at
from tests.fs.helpers import USER, Root

OLD = b"o" * (4 << 20)
NEW = b"n" * (4 << 20)


def test_replace_sets_content_mode_and_owner(root: Root) -> None:
    root.p("f").write_bytes(b"old")
    replace_at(root.fd, "f", b"new", mode=0o640)
    st = os.stat(root.p("f"))
    assert root.p("f").read_bytes() == b"new"
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert os.listdir(root.path) == ["f"]  # no temporary file left behind


@pytest.mark.root
def test_replace_chowns_before_chmod_so_setgid_survives(root: Root) -> None:
    replace_at(root.fd, "f", b"x", mode=0o2755, uid=USER, gid=USER)
    st = os.stat(root.p("f"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (USER, USER, 0o2755)


def test_replace_replaces_a_symlink_never_writes_through_it(root: Root, scratch: Path) -> None:
    target = scratch / "target"
    target.write_text("untouched")
    os.symlink(str(target), root.p("f"))
    replace_at(root.fd, "f", b"new")
    assert not root.p("f").is_symlink()
    assert root.p("f").read_bytes() == b"new"
    assert target.read_text() == "untouched"


def test_a_writer_killed_midway_leaves_old_or_new(root: Root) -> None:
    """Kill (SIGKILL, by pid) a child rewriting the file in a loop, at different moments."""
    root.p("f").write_bytes(OLD)
    for delay in (0.0, 0.002, 0.01, 0.03):
        pid = os.fork()
        if pid == 0:
            try:
                while True:
                    replace_at(root.fd, "f", NEW, durable=False)
                    replace_at(root.fd, "f", OLD, durable=False)
            finally:
                os._exit(1)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status)
        data = root.p("f").read_bytes()
        assert data in (OLD, NEW), f"torn file after {delay}s: {len(data)} bytes"
        # A killed writer may leave its temporary file; it never has the final name.
        for name in os.listdir(root.path):
            if name != "f":
                assert name.startswith(".#f.")
                os.unlink(root.p(name))


def test_replace_refuses_bad_names(root: Root) -> None:
    for bad in ("a/b", "..", ""):
        with pytest.raises(ValueError, match="single path component"):
            replace_at(root.fd, bad, b"")
