"""The persistence commands through freshroot's command line, on a scratch root."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from freshroot.cli import main
from freshroot.fs import bindmount
from tests.fs.helpers import in_child
from tests.persist.helpers import is_mounted, make_root, setup, snapshot

pytestmark = [pytest.mark.root, pytest.mark.netns]

DECL = """[persist]
audit-ignore = ["/etc/passwd"]
[persist."/persist"]
directories = ["/var/log", "/var/lib/db"]
files = [{ path = "/etc/machine-id", how = "bind" }]
"""


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_status_migrate_audit_undo(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        conf = root / "decl.toml"
        conf.write_text(DECL)
        (root / "var/lib/db").mkdir(parents=True)
        (root / "var/lib/db/rows").write_text("precious")
        (root / "var/cache/x").mkdir(parents=True)
        (root / "var/cache/x/junk").write_text("volatile")
        (root / "opt/tool").mkdir(parents=True)
        (root / "opt/tool/state").write_text("x" * 5000)
        (root / "persist/old").mkdir()
        (root / "persist/old/stale").write_text("gone from the declaration")
        common = ("--root", str(root), "--config", str(conf))
        before = snapshot(root)

        code, out, _ = _run("status", *common, "--json")
        doc = json.loads(out)
        states = {e["path"]: e["state"] for e in doc["entries"]}
        assert code == 3  # a conflict is the worst finding (docs/exit-codes.md)
        assert states == {"/var/log": "pending", "/var/lib/db": "conflict", "/etc/machine-id": "pending"}
        conflict = next(e for e in doc["entries"] if e["path"] == "/var/lib/db")
        assert "freshroot migrate /var/lib/db" in conflict["todo"][0]
        assert conflict["declared_at"].endswith("decl.toml:4")

        code, out, _ = _run("migrate", *common, "--dry-run", "/var/lib/db")
        assert code == 0
        assert "move the data of /var/lib/db" in out
        assert snapshot(root) == before
        code, out, err = _run("migrate", *common, "/var/lib/db")
        assert code == 0, err
        assert (root / "persist/var/lib/db/rows").read_text() == "precious"
        assert list((root / "var/lib/db").iterdir()) == []

        a = setup(root, DECL)
        assert a.apply().ok
        assert is_mounted(root / "var/lib/db")
        code, out, _ = _run("status", *common)
        assert "3 ok" in out
        assert code == 0

        code, out, _ = _run("audit", *common, "--json")
        counted = {g["path"]: g for g in json.loads(out)["unpersisted"]}
        assert counted["/opt/tool"] == {"path": "/opt/tool", "files": 1, "bytes": None}  # not measured
        assert counted["/etc"]["files"] == 1  # /etc/group; /etc/passwd is audit-ignore'd, machine-id declared
        code, out, _ = _run("audit", *common, "--json", "--ignore", "/opt/tool/state", "--ignore", "/etc/gr*")
        counted = {g["path"]: g for g in json.loads(out)["unpersisted"]}
        assert "/opt/tool" not in counted  # a file path on the command line
        assert "/etc" not in counted  # and a file glob
        code, out, _ = _run("audit", *common, "--json", "--sizes")
        doc = json.loads(out)
        groups = {g["path"]: g for g in doc["unpersisted"]}
        assert groups["/opt/tool"] == {"path": "/opt/tool", "files": 1, "bytes": 5000}
        assert not any(p.startswith(("/var/cache", "/var/lib/db", "/persist", "/var/log")) for p in groups)
        assert "/etc" in groups  # group
        assert [g["path"] for g in doc["undeclared_in_storage"]] == ["/persist/old"]

        code, out, _ = _run("undo", "--root", str(root), "--dry-run")
        assert "would revert" in out
        assert is_mounted(root / "var/lib/db")
        code, out, _ = _run("undo", "--root", str(root), "--json")
        doc = json.loads(out)
        assert code == 0
        assert any("unmounted" in line for line in doc["undone"])
        assert not is_mounted(root / "var/lib/db")
        assert (root / "persist/var/lib/db/rows").read_text() == "precious"
        code, out, _ = _run("undo", "--root", str(root))
        assert out.strip() == "nothing to undo"
    in_child(body)


def test_errors_reach_the_user_as_messages(scratch: Path) -> None:
    root = make_root(scratch)
    conf = root / "decl.toml"
    conf.write_text('[persist."/persist"]\ndirectories = ["relative"]\n')
    code, _, err = _run("status", "--root", str(root), "--config", str(conf))
    assert code == 65
    assert "/decl.toml:2:" in err  # a --config file inside the root: named as the root sees it
    assert err.endswith(f"\n  root: {root}\n")
    assert "absolute" in err
    assert "Traceback" not in err
    conf.write_text('[persist."/nowhere"]\ndirectories = ["/a"]\n')
    code, out, _ = _run("status", "--root", str(root), "--config", str(conf))
    assert code == 4  # the storage is missing
    assert "does not exist" in out
    code, _, err = _run("migrate", "--root", str(root), "--config", str(conf), "/not/declared")
    assert code == 65  # a bad argument (docs/exit-codes.md)
    assert "not a declared persisted path" in err
    os.close(os.open(str(root), os.O_PATH))
