"""Every {directory, bound file, symlinked file} x {root: missing, empty, holding data, already
a mount, a dangling symlink, a symlink elsewhere} x {storage: empty, holding data} gives the
result documented in docs/persistence.md, and no byte is lost (content hashes before/after).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from freshroot.fs import bindmount
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist.facts import State, look_entry
from freshroot.plan.undo import undo
from tests.fs.helpers import in_child
from tests.persist.helpers import contents, make_root, setup, snapshot

pytestmark = [pytest.mark.root, pytest.mark.netns]

KINDS = ("directory", "bound-file", "symlinked-file")
TARGETS = ("missing", "empty", "data", "mount", "dangling", "elsewhere")
STORAGES = ("empty", "data")

DECLARATIONS = {
    "directory": 'directories = ["/var/lib/app"]',
    "bound-file": 'files = [{ path = "/etc/app.conf", how = "bind" }]',
    "symlinked-file": 'files = [{ path = "/etc/app.conf", how = "symlink" }]',
}
PATHS = {"directory": "var/lib/app", "bound-file": "etc/app.conf", "symlinked-file": "etc/app.conf"}

# The documented result (docs/persistence.md, "What apply does with what it finds").
RESULT = {"missing": "persisted", "empty": "persisted", "data": "refused", "mount": "refused",
          "dangling": "refused", "elsewhere": "refused"}


def _make(path: Path, is_dir: bool, data: bytes | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        path.mkdir()
        if data:
            (path / "a").write_bytes(data)
            (path / "sub").mkdir()
            (path / "sub" / "b").write_bytes(data + b" (b)")
    else:
        path.write_bytes(data or b"")


def build(base: Path, kind: str, target: str, storage: str) -> Path:
    root = make_root(base)
    rel = PATHS[kind]
    is_dir = kind == "directory"
    other = root / "srv" / "other"
    _make(other, is_dir, b"elsewhere data")
    t = root / rel
    match target:
        case "missing":
            pass
        case "empty":
            _make(t, is_dir, None)
        case "data":
            _make(t, is_dir, b"root data")
        case "mount":
            _make(t, is_dir, None)
            fd = os.open(str(root), os.O_PATH)
            with chase("/srv/other", root_fd=fd) as src, chase("/" + rel, root_fd=fd, flags=ChaseFlags.PARENT) as p:
                bindmount.bind_at(src.fd, p.fd, p.rest)
            os.close(fd)
        case "dangling":
            t.parent.mkdir(parents=True, exist_ok=True)
            t.symlink_to("/nonexistent")
        case "elsewhere":
            t.parent.mkdir(parents=True, exist_ok=True)
            t.symlink_to("/srv/other")
    if storage == "data":
        _make(root / "persist" / rel, is_dir, b"storage data")
    return root


def check(base: Path, kind: str, target: str, storage: str, migrate: str | None = None) -> None:
    bindmount.unshare_mounts()
    root = build(base, kind, target, storage)
    extra = f', migrate = "{migrate}"' if migrate else ""
    decl = DECLARATIONS[kind]
    if migrate:
        decl = decl.replace('"/var/lib/app"', '{ path = "/var/lib/app"' + extra + " }").replace(
            'how = "bind"', 'how = "bind"' + extra).replace('how = "symlink"', 'how = "symlink"' + extra)
    a = setup(root, f'[persist."/persist"]\n{decl}\n')
    before, hashes = snapshot(root), contents(root)
    storage_hashes = contents(root / "persist")
    t = root / PATHS[kind]
    moved = (contents(t) if t.is_dir() else {hashlib.sha256(t.read_bytes()).hexdigest()}) if target == "data" else set()
    outcome = a.apply()
    expected = RESULT[target] if migrate is None else ("persisted" if storage == "empty" else "refused")
    assert hashes <= contents(root), "a file's content disappeared"
    entry = a.p.entries()[0]
    if expected == "refused":
        assert not outcome.ok
        message = outcome.failed[0][1]
        assert "/" + PATHS[kind] in message
        if target == "data":  # names both places, and says how to migrate when it can
            assert "persist/" + PATHS[kind] in message
            assert ("freshroot migrate" in message) == (storage == "empty")
        assert snapshot(root) == before, "a refused entry changed the root"
        return
    assert outcome.ok, outcome.failed
    _, found = look_entry(a.fd, entry)
    assert found.state is (State.OURS_LINK if kind == "symlinked-file" else State.OURS_MOUNT)
    assert a.plan() == [], "a second apply has something to do"
    assert storage_hashes <= contents(root / "persist"), "storage lost data"
    if migrate is not None:
        assert moved <= contents(root / "persist"), "migrated data is not in storage"
    if migrate is None:
        report = undo(a.ctx())
        assert snapshot(root) == before, f"undo did not restore the root: {report}"
        assert a.apply().ok
    # What is written at the path now lands in storage.
    if kind == "directory":
        (t / "new").write_bytes(b"new state")
        assert (root / "persist" / PATHS[kind] / "new").read_bytes() == b"new state"
    elif kind == "symlinked-file":  # root-relative: resolves to storage on the booted system
        assert os.readlink(t) == "/persist/" + PATHS[kind]
    else:
        with open(t, "r+b") as f:
            f.write(b"new state")
        assert (root / "persist" / PATHS[kind]).read_bytes().startswith(b"new state")


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", KINDS)
def test_matrix(scratch: Path, kind: str, target: str, storage: str) -> None:
    in_child(lambda: check(scratch, kind, target, storage))


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_matrix_migrate_move(scratch: Path, kind: str, storage: str) -> None:
    """Holding data with migrate = "move": into storage then persisted; both holding data: refused."""
    in_child(lambda: check(scratch, kind, "data", storage, migrate="move"))


@pytest.mark.parametrize("kind", ["directory", "bound-file"])
def test_matrix_migrate_copy(scratch: Path, kind: str) -> None:
    in_child(lambda: check(scratch, kind, "data", "empty", migrate="copy"))
