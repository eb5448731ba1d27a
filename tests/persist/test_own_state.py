"""freshroot's own state files never count as user data against a migration (issue 15).

The users step keeps its remembered ids in storage when the declaration persists a path
holding /var/lib/freshroot/ids; persisting `/var/lib` with `migrate = "move"` must then not
refuse the root's own copy as "different content", and the boot's mark of a root in use
(/var/lib/freshroot/root-in-use) stays on the root's own file system: never moved into
storage, where it would survive the wipe."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from freshroot.cli import main
from tests.nsutil import in_mount_namespace
from tests.persist.helpers import is_mounted, make_root

pytestmark = [pytest.mark.root, pytest.mark.netns]

USERS = """\
[users.alice]
uid = 1000

[users.svc]
system = true
"""

PERSIST = """
[persist."/persist"]
directories = [{ path = "/var/lib", migrate = "move" }]
"""


def _pair(value: object) -> tuple[int, str]:
    assert isinstance(value, tuple)
    rc, out = value
    return int(rc), str(out)


def _run(root: Path, config: Path, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([*args, "--root", str(root), "--config", str(config)])
    return rc, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("earlier", ["fresh", "applied-before", "boot-mark"])
def test_persisting_var_lib_with_move_is_not_a_conflict_with_freshroots_own_files(
        tmp_path: Path, earlier: str) -> None:
    root = make_root(tmp_path)
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg" / "status").write_text("Package: base-files\n")
    users_only, full = tmp_path / "users.toml", tmp_path / "full.toml"
    users_only.write_text(USERS)
    full.write_text(USERS + PERSIST)

    def run() -> dict[str, object]:
        got: dict[str, object] = {}
        if earlier == "applied-before":  # a converted machine: apply ran before /var/lib was persisted
            got["before"] = _run(root, users_only, "apply")
            got["root_ids"] = json.loads((root / "var/lib/freshroot/ids/ids.json").read_text())
        if earlier == "boot-mark":  # a kept root the boot activation marked
            (root / "var/lib/freshroot").mkdir(parents=True)
            (root / "var/lib/freshroot/root-in-use").write_text("")
        got["first"] = _run(root, full, "apply")
        got["mounted"] = is_mounted(root / "var" / "lib")
        store = root / "persist" / "var" / "lib"
        got["stored_status"] = (store / "dpkg" / "status").read_text() if (store / "dpkg" / "status").exists() else None
        got["stored_ids"] = json.loads((store / "freshroot/ids/ids.json").read_text())
        got["mark_in_storage"] = (store / "freshroot" / "root-in-use").exists()
        got["second"] = _run(root, full, "apply")
        got["status"] = _run(root, full, "status")
        got["undo"] = _run(root, full, "undo")
        got["root_status"] = (root / "var/lib/dpkg/status").exists()  # moved: the root's copy is gone
        got["mark_on_root"] = (root / "var/lib/freshroot/root-in-use").exists()
        return got

    got = in_mount_namespace(run)
    rc, out = _pair(got["first"])
    assert rc == 0, out
    assert "differ" not in out
    assert got["mounted"]
    assert got["stored_status"] == "Package: base-files\n"
    ids = got["stored_ids"]
    assert isinstance(ids, dict)
    assert ids["users"]["alice"] == 1000
    if earlier == "applied-before":
        # The ids the root remembered are the ones storage keeps: svc keeps its uid.
        assert got["before"][0] == 0, got["before"]  # type: ignore[index]
        assert ids["users"]["svc"] == got["root_ids"]["users"]["svc"]  # type: ignore[index]
    assert not got["mark_in_storage"]
    rc, out = _pair(got["second"])
    assert rc == 0, out
    assert "persist: unchanged" in out, out
    rc, out = _pair(got["status"])
    assert rc == 0, out
    assert "conflict" not in out
    assert got["undo"][0] == 0, got["undo"]  # type: ignore[index]
    assert not got["root_status"]
    assert got["mark_on_root"] == (earlier == "boot-mark")


def test_a_users_own_file_in_the_same_place_still_conflicts(tmp_path: Path) -> None:
    """Only freshroot's own files are left out: a different file beside them is still data."""
    root = make_root(tmp_path)
    (root / "var/lib/freshroot").mkdir(parents=True)
    (root / "var/lib/freshroot/notes").write_text("root's\n")
    (root / "persist/var/lib/freshroot").mkdir(parents=True)
    (root / "persist/var/lib/freshroot/notes").write_text("storage's\n")
    config = tmp_path / "full.toml"
    config.write_text(USERS + PERSIST)
    rc, out = in_mount_namespace(lambda: _run(root, config, "apply"))
    assert rc == 1, out
    assert "notes: different content" in out
    assert os.path.exists(root / "var/lib/freshroot/notes")


def test_the_own_state_paths_are_the_ones_freshroot_writes() -> None:
    from freshroot.activation.users import IDS_DIR, IDS_FILE
    from freshroot.persist import image
    from freshroot.persist.model import IDS_PATH, ROOT_MARK, own_state

    assert f"{IDS_DIR}/{IDS_FILE}" == IDS_PATH
    assert image.ROOT_MARK == ROOT_MARK
    assert own_state("/var/lib") == {"/freshroot/root-in-use": True, "/freshroot/ids/ids.json": False}
    assert own_state("/var/lib/freshroot/ids") == {"/ids.json": False}
    assert own_state("/var/log") == {}
