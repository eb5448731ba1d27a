"""The audit's walk: grouping, ignore patterns, no crossing into mounts, --sizes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
from pathlib import Path

import pytest

from freshroot.fs import bindmount, mount
from freshroot.persist.audit import _Matcher, audit
from tests.fs.helpers import in_child
from tests.persist.helpers import make_root, setup


def _tree(root: Path) -> None:
    for rel, size in (("opt/a/cache/x", 10), ("opt/a/keep/y", 20), ("opt/b/z", 5), ("var/cache/apt/big", 999),
                      ("srv/data/f", 7), ("home/alice/.cache/c", 3), ("home/alice/doc", 4)):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * size)


@pytest.mark.root
@pytest.mark.netns
def test_groups_ignores_and_mounts(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        _tree(root)
        (root / "mnt2").mkdir()
        mount.mount("tmpfs", str(root / "srv"), "tmpfs")  # another file system: not walked
        a = setup(root, '[persist]\naudit-ignore = ["/home/*/.cache"]\n[persist."/persist"]\n'
                        'files = ["/home/alice/doc"]\n')
        report = audit(a.p, a.ctx(), ignore=("/opt/*/cache",), depth=2, sizes=True)
        groups = {g.path: (g.files, g.bytes) for g in report.unpersisted}
        assert groups == {"/opt/a": (1, 20), "/opt/b": (1, 5), "/etc": (2, len((root / "etc/passwd").read_bytes())
                                                                     + len((root / "etc/group").read_bytes()))}
        assert report.unpersisted[0].path == "/etc"  # largest first
        counted = audit(a.p, a.ctx(), depth=1)  # the default: counted, not sized
        assert {g.path: g.files for g in counted.unpersisted} == {"/opt": 3, "/etc": 2}  # .cache ignored, doc declared
        assert counted.to_json()["unpersisted_bytes"] is None
        assert "/srv" not in {g.path for g in counted.unpersisted}
    in_child(body)


def test_file_paths_and_globs_are_ignored(scratch: Path) -> None:
    root = make_root(scratch)
    for rel in ("opt/x/a.log", "opt/x/a.txt", "opt/x/deep/b.log", "opt/y/c.log", "srv/keep", "srv/drop"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    a = setup(root, '[persist]\naudit-ignore = ["/opt/x/*.log", "/etc/passwd"]\n[persist."/persist"]\n'
                    'directories = ["/var/lib/a"]\n')
    report = audit(a.p, a.ctx(), ignore=("/srv/drop",), depth=3)
    groups = {g.path: g.files for g in report.unpersisted}
    # a.log and deep/b.log match (``*`` crosses ``/``, as for directories); y/c.log does not
    assert groups == {"/opt/x": 1, "/opt/y": 1, "/etc": 1, "/srv": 1}
    assert report.files == 4


def test_file_globs_are_tested_only_where_they_can_match() -> None:
    m = _Matcher(("/proc", "/var/tmp", "/etc/passwd"))
    assert m.glob is None  # no globs: the walk never calls a regex per file
    assert m.names == {"": {"proc"}, "/var": {"tmp"}, "/etc": {"passwd"}}
    m = _Matcher(("/opt/x/*.log", "/home/*/.cache"))
    assert m.files_in("") is None
    assert m.files_in("/opt") is None  # /opt/x/... is one level further down
    assert m.files_in("/srv") is None
    x = m.files_in("/opt/x")
    assert x is not None
    rx, endings = x
    assert rx.match("/opt/x/a.log")
    assert not rx.match("/opt/x/a.txt")
    assert endings == (".log",)  # names not ending so are never given to the regex
    assert m.files_in("/opt/x/deep") is x  # compiled once, not once per directory
    h = m.files_in("/home/alice")
    assert h is not None
    assert h[1] == (".cache",)
    both = _Matcher(("/a/*.log", "/a/b[12].t?t", "/a/c[!x]")).files_in("/a")
    assert both is not None
    assert sorted(both[1]) == ["", ".log", "t"]  # "" (ends in a wildcard): every name goes to the regex


def _user_tree(root: Path, count: int) -> None:
    """A user's home with ``count`` subdirectories, one file in each."""
    home = root / "home/alice"
    home.mkdir(parents=True)
    for i in range(count):
        (home / f"d{i}").mkdir()
        (home / f"d{i}/f").write_bytes(b"x")
    for dirpath, dirnames, filenames in os.walk(home):
        for n in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, n), 1000, 1000)
    os.chown(home, 1000, 1000)


@pytest.mark.root
def test_thousands_of_subdirectories_within_ulimit_1024(scratch: Path) -> None:
    """Issue 14 #12. Before: one fd per queued directory, EMFILE skipped in silence: 1,022 of
    3,000 files reported, and a complete-looking report."""
    root = make_root(scratch)
    _user_tree(root, 3000)

    def body() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        a = setup(root, '[persist."/persist"]\ndirectories = ["/var/log"]\n')
        report = audit(a.p, a.ctx(), depth=2)
        assert {g.path: g.files for g in report.unpersisted}["/home/alice"] == 3000
        assert report.complete
        assert report.unreadable == []
    in_child(body)


@pytest.mark.root
def test_what_cannot_be_read_is_reported_and_exits_73(scratch: Path) -> None:
    """A directory the walk cannot open (here: no fd left) is named, the report says it is
    incomplete, and the command exits 73. Before: skipped without a word, exit 0."""
    root = make_root(scratch)
    deep = root / "srv"
    for i in range(120):
        deep = deep / f"l{i}"
    deep.mkdir(parents=True)
    (deep / "f").write_bytes(b"x")
    conf = root / "decl.toml"
    conf.write_text('[persist."/persist"]\ndirectories = ["/var/log"]\n')

    def body() -> None:
        from freshroot.cli import main

        out, err = io.StringIO(), io.StringIO()
        soft = len(os.listdir("/proc/self/fd")) + 24  # far fewer than a walk 120 deep would hold
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["audit", "--root", str(root), "--config", str(conf), "--json"])
        doc = json.loads(out.getvalue())
        assert code == 73, err.getvalue()
        assert doc["complete"] is False
        assert doc["unreadable"]
        assert all(u.startswith("/srv/l0/") for u in doc["unreadable"]), doc["unreadable"]
        assert "Too many open files" in doc["unreadable"][0]
    in_child(body)
