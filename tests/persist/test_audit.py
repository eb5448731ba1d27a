"""The audit's walk: grouping, ignore patterns, no crossing into mounts, --sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshroot.fs import bindmount, mount
from freshroot.persist.audit import audit
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
