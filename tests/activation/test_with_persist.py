"""The whole plan with persistence: users before persist, ids kept in storage across a wipe."""

from __future__ import annotations

import json
import os
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from freshroot.fs.bindmount import unshare_mounts
from freshroot.plan.executor import order
from freshroot.plan.result import Status

from .helpers import apply, make_root, steps_of, write_decl

DECL = '''
[persist."/persist"]
include = ["ids"]
directories = [{ path = "/var/lib/alice-data", user = "alice", mode = "0700" }]
'''


def in_namespace(body: Callable[[], None]) -> None:
    """Run ``body`` in a forked child with a private mount namespace; its mounts die with it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        code = 0
        try:
            unshare_mounts()
            body()
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            os.write(write, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        problem = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, problem


def test_persist_runs_after_users(tmp_path):
    root = make_root(tmp_path / "root")
    names = [s.name for s in order(steps_of(root, write_decl(tmp_path, DECL + "[users.alice]\n")))]
    assert names.index("persist") > names.index("users")


def test_plan_does_not_fail_on_users_it_would_create(tmp_path):
    root = make_root(tmp_path / "root")
    (root / "persist").mkdir()
    report = apply(root, write_decl(tmp_path, DECL + "[users.alice]\n"), dry_run=True)
    assert report.ok
    # planned, not skipped: alice resolves to the uid the users step will give her (issue 19)
    actions = report.result("persist").actions
    assert any("/persist/var/lib/alice-data (0700 1000:" in a for a in actions), actions


@pytest.mark.root
@pytest.mark.netns
def test_wiped_root_keeps_ids_through_persistence(tmp_path):
    root = make_root(tmp_path / "root")
    (root / "persist").mkdir()
    decl = write_decl(tmp_path, DECL + "[users.alice]\n")

    def first() -> None:
        report = apply(root, decl)
        assert report.ok, report.render()

    in_namespace(first)
    ids = json.loads((root / "persist/var/lib/freshroot/ids/ids.json").read_text())
    assert ids["users"]["alice"] == 1000
    assert (root / "persist/var/lib/alice-data").stat().st_uid == 1000

    # reboot: everything but /persist is new; a user declared before alice now
    for entry in root.iterdir():
        if entry.name != "persist":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    make_root(root)
    decl = write_decl(tmp_path, DECL + "[users.bob]\n[users.alice]\n")

    def second() -> None:
        report = apply(root, decl)
        assert report.ok, report.render()
        passwd = (root / "etc/passwd").read_text()
        assert "alice:x:1000:1000:" in passwd
        assert "bob:x:1001:1001:" in passwd
        assert Path(root / "var/lib/freshroot/ids/ids.json").exists()  # the bound storage copy

    in_namespace(second)


def test_section_wide_persist_settings_are_not_storages(tmp_path):
    # [persist] audit-ignore sits beside the storage tables; the users step (looking for the
    # ids preset) once took it for a storage and failed the whole apply.
    root = make_root(tmp_path / "root")
    (root / "persist").mkdir()
    decl = write_decl(tmp_path, '[persist]\naudit-ignore = ["/usr"]\n' + DECL + "[users.alice]\n")
    report = apply(root, decl, dry_run=True)
    assert report.ok, [(r.name, r.error) for r in report.results if r.error]
    assert report.result("users").status is not Status.FAILED
