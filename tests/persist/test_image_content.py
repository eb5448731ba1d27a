"""One meaning for boot and apply (issue 19): on the same fresh roots, the boot activation's
path (``apply --boot``: the root marked fresh, then planned) and ``apply``'s path (planned
later in the same boot) decide the same for every persisted kind x {image content, empty,
missing} x {storage empty, holding data}. And each branch of "image content or user data"
(docs/persistence.md, "Image content") is shown: data written since the boot, and a root
that was not wiped, are never hidden.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from freshroot.config.table import Table
from freshroot.fs.ops import open_root
from freshroot.persist import image
from freshroot.persist.planner import plan
from freshroot.persist.steps import load
from freshroot.plan.action import Context
from tests.nsutil import in_mount_namespace
from tests.persist.helpers import declaration, make_root

pytestmark = pytest.mark.root

KINDS = ("directory", "bound-file", "symlinked-file")
ROOTS = ("image", "empty", "missing")
STORAGES = ("empty", "data")
DECLARATIONS = {
    "directory": 'directories = ["/var/log"]',
    "bound-file": 'files = [{ path = "/etc/app.conf", how = "bind" }]',
    "symlinked-file": 'files = [{ path = "/etc/app.conf", how = "symlink" }]',
}
PATHS = {"directory": "var/log", "bound-file": "etc/app.conf", "symlinked-file": "etc/app.conf"}


def _decl(kind: str) -> Table:
    return declaration(f'[persist."/persist"]\n{DECLARATIONS[kind]}\n')


def build(base: Path, kind: str, on_root: str, storage: str) -> Path:
    root = make_root(base)
    rel = PATHS[kind]
    is_dir = kind == "directory"
    t, s = root / rel, root / "persist" / rel
    t.parent.mkdir(parents=True, exist_ok=True)
    s.parent.mkdir(parents=True, exist_ok=True)
    if on_root != "missing":
        if is_dir:
            t.mkdir()
            if on_root == "image":
                (t / "dpkg.log").write_text("the image's log\n")
                (t / "journal").mkdir()
                os.chown(t / "journal", 0, 4)
                os.chmod(t / "journal", 0o2755)
        else:
            t.write_text("image's\n" if on_root == "image" else "")
    if is_dir:
        s.mkdir()
        if storage == "data":
            (s / "kept.log").write_text("user data in storage\n")
    elif storage == "data":
        s.write_text("user data in storage\n")
    return root


def decide(root: Path, kind: str, *, boot: bool) -> list[str]:
    """What the persist planner decides at this root; ``boot``: as the boot activation."""
    fd = open_root(str(root))
    try:
        ctx = Context(fd, str(root), dry_run=True, boot=boot)
        return [a.describe() for a in plan(load(_decl(kind), fd), ctx)]
    finally:
        os.close(fd)


CASES = [(k, r, s) for k in KINDS for r in ROOTS for s in STORAGES]


@pytest.mark.parametrize(("kind", "on_root", "storage"), CASES)
def test_boot_and_apply_decide_the_same(tmp_path: Path, kind: str, on_root: str, storage: str) -> None:
    boot_root = build(tmp_path / "boot", kind, on_root, storage)
    apply_root = build(tmp_path / "apply", kind, on_root, storage)
    time.sleep(2 * image.SLACK)  # the image's files are older than the boot's mark
    for root in (boot_root, apply_root):
        fd = open_root(str(root))
        try:
            assert image.mark_boot(fd).fresh  # no mark from a previous boot: fresh from the image
        finally:
            os.close(fd)
    at_boot = decide(boot_root, kind, boot=True)
    in_apply = decide(apply_root, kind, boot=False)
    shown = [line.replace(str(apply_root), "") for line in in_apply]
    assert [line.replace(str(boot_root), "") for line in at_boot] == shown
    refused = any(line.startswith("refuse") for line in at_boot)
    assert not refused, at_boot  # image content, empty, missing: never refused on a fresh root
    if on_root == "image":
        assert any("the image's content" in line for line in at_boot), at_boot
        if storage == "empty" and kind == "directory":
            assert any(line.startswith("seed /persist/var/log") for line in at_boot), at_boot


def _apply_for_real(root: Path, kind: str, *, boot: bool) -> None:
    def body() -> None:
        fd = open_root(str(root))
        try:
            ctx = Context(fd, str(root), boot=boot)
            for action in plan(load(_decl(kind), fd), ctx):
                action.apply(ctx)
        finally:
            os.close(fd)

    in_mount_namespace(body)


def test_image_content_hidden_and_seeded_for_real(tmp_path: Path) -> None:
    root = build(tmp_path, "directory", "image", "empty")
    fd = open_root(str(root))
    try:
        image.mark_boot(fd)
        assert image.hidden_paths(fd) == []
    finally:
        os.close(fd)
    _apply_for_real(root, "directory", boot=True)
    storage = root / "persist" / "var" / "log"
    assert sorted(p.name for p in storage.iterdir()) == ["journal"]  # the skeleton, not the files
    st = (storage / "journal").stat()
    assert (st.st_gid, st.st_mode & 0o7777) == (4, 0o2755)
    assert (root / "var" / "log" / "dpkg.log").read_text() == "the image's log\n"  # hidden, not deleted
    fd = open_root(str(root))
    try:
        assert image.hidden_paths(fd) == ["/var/log"]
    finally:
        os.close(fd)


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_data_written_since_boot_is_user_data(tmp_path: Path, kind: str, storage: str) -> None:
    """Later in the same boot, what changed after the mark is migrated or refused, never hidden."""
    root = build(tmp_path, kind, "empty", storage)
    fd = open_root(str(root))
    try:
        image.mark_boot(fd)
    finally:
        os.close(fd)
    time.sleep(2 * image.SLACK)
    target = root / PATHS[kind]
    if kind == "directory":
        (target / "written-since-boot").write_text("user data\n")
    else:
        target.write_text("user data\n")
    decided = decide(root, kind, boot=False)
    assert not any("image's content" in line for line in decided), decided
    if storage == "data":
        assert any(line.startswith("refuse") and "both" in line for line in decided), decided
    else:
        assert any(line.startswith("refuse") or "into /persist" in line for line in decided), decided


@pytest.mark.parametrize("kind", KINDS)
def test_a_root_that_was_not_wiped_is_user_data_at_boot(tmp_path: Path, kind: str) -> None:
    """A machine being converted: the previous boot's mark is still on the root."""
    root = build(tmp_path, kind, "image", "data")
    fd = open_root(str(root))
    try:
        image.mark_boot(fd)  # the previous boot
        assert not image.mark_boot(fd).fresh  # this boot finds its mark: the root was kept
    finally:
        os.close(fd)
    decided = decide(root, kind, boot=True)
    assert not any("image's content" in line for line in decided), decided
    assert any(line.startswith("refuse") and "both" in line for line in decided), decided


def test_without_a_boot_mark_nothing_is_image_content(tmp_path: Path) -> None:
    root = build(tmp_path, "directory", "image", "data")
    shutil.rmtree(root / "run", ignore_errors=True)
    assert any(line.startswith("refuse") for line in decide(root, "directory", boot=False))


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_image_content_applied_for_real(tmp_path: Path, kind: str, storage: str) -> None:
    """Applied, not only planned: the root then shows storage's copy (seeded from the image's
    when storage had none), and a second plan has nothing left to do."""
    root = build(tmp_path, kind, "image", storage)
    time.sleep(2 * image.SLACK)
    fd = open_root(str(root))
    try:
        image.mark_boot(fd)
    finally:
        os.close(fd)
    rel = PATHS[kind]

    def body() -> None:
        fd = open_root(str(root))
        try:
            ctx = Context(fd, str(root), boot=True)
            for action in plan(load(_decl(kind), fd), ctx):
                action.apply(ctx)
            assert plan(load(_decl(kind), fd), ctx) == []
        finally:
            os.close(fd)
        seen = root / rel
        if kind == "directory":
            names = sorted(p.name for p in seen.iterdir())
            assert names == (["kept.log"] if storage == "data" else ["journal"])  # seeded only when empty
        else:
            want = "user data in storage\n" if storage == "data" else "image's\n"
            assert seen.is_symlink() == (kind == "symlinked-file")
            if seen.is_symlink():  # a link in the root's terms: read it there
                assert os.readlink(seen) == "/persist/" + rel
                seen = root / "persist" / rel
            assert seen.read_text() == want

    in_mount_namespace(body)
