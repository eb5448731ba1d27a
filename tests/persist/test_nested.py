"""Nested declarations people write (issue 15): each is either applied as documented or refused
by the check before anything runs (exit 65, file:line, a hint saying what to write instead),
with the scratch root left byte for byte as it was."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from freshroot.cli import main
from tests.nsutil import in_mount_namespace
from tests.persist.helpers import is_mounted, make_root, snapshot

REFUSED = {
    "storage-in-storage": (
        ('[persist."/persist"]\ndirectories = ["/var/log"]\n\n'
         '[persist."/persist/system"]\ndirectories = ["/var/lib/app"]\n'),
        ":4: storage /persist/system is inside storage /persist",
        'declare these entries in [persist."/persist"]'),
    "directory-in-persisted-directory": (
        '[persist."/persist"]\ndirectories = [\n  "/var/lib",\n  "/var/lib/app",\n]\n',
        ":4: /var/lib/app is inside /var/lib",
        "remove this entry"),
    "file-in-persisted-directory": (
        '[persist."/persist"]\ndirectories = ["/var/lib"]\nfiles = ["/var/lib/app.conf"]\n',
        ":3: file /var/lib/app.conf is inside the persisted directory /var/lib",
        "remove this entry"),
    "trailing-slash": (
        '[persist."/persist"]\ndirectories = ["/var/log/"]\n',
        ":2: persist.\"/persist\".directories[0].path: '/var/log/' is not canonical",
        'write "/var/log"'),
    "trailing-slash-in-a-home": (
        '[persist."/persist".users.alice]\ndirectories = [".ssh/"]\n',
        ":2: persist.\"/persist\".users.alice.directories[0].path: '.ssh/' is not canonical",
        'write ".ssh"'),
    "trailing-slash-on-a-storage": (
        '[persist."/persist/"]\ndirectories = ["/var/log"]\n',
        ":1: storage path '/persist/' is not canonical",
        'write [persist."/persist"]'),
    "doubled-slash-and-dot": (
        '[persist."/persist"]\ndirectories = [\n  "/var//log",\n  "/var/./cache",\n]\n',
        ":4: persist.\"/persist\".directories[1].path: '/var/./cache' is not canonical",
        'write "/var/cache"'),
    "symbolic-mode": (
        '[persist."/persist"]\ndirectories = [{ path = "/var/lib/app", mode = "u=rwx,g=rx,o=" }]\n',
        ":2: persist.\"/persist\".directories[0].mode must be an octal mode",
        'write mode = "0750"'),
    "symbolic-parent-mode": (
        '[persist."/persist"]\nparent = { mode = "u=rwx,go=" }\ndirectories = ["/var/lib/app"]\n',
        ":2: persist.\"/persist\".parent.mode must be an octal mode",
        'write mode = "0700"'),
}


def _pair(value: object) -> tuple[int, str]:
    assert isinstance(value, tuple)
    rc, out = value
    return int(rc), str(out)


def _run(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, out.getvalue() + err.getvalue()


@pytest.mark.root
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_at_check_with_a_hint_and_nothing_changed(tmp_path: Path, case: str) -> None:
    text, message, hint = REFUSED[case]
    root = make_root(tmp_path)
    (root / "home" / "alice").mkdir(parents=True)
    (root / "var" / "lib" / "app").mkdir(parents=True)
    (root / "var" / "lib" / "app" / "data").write_text("x")
    config = tmp_path / "decl.toml"
    config.write_text(text)
    before = snapshot(tmp_path)
    for command in (["config", "check"], ["plan"], ["apply"]):
        rc, out = _run([*command, "--root", str(root), "--config", str(config)])
        assert rc == 65, (command, out)
        assert f"{config}{message}" in out, (command, out)
        assert "hint: " in out, (command, out)
        assert hint in out.split("hint: ", 1)[1], (command, out)
        assert "Traceback" not in out
    assert snapshot(tmp_path) == before


@pytest.mark.root
@pytest.mark.netns
def test_a_directory_inside_one_another_storage_persists_is_mounted_on_top(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "data").mkdir()
    config = tmp_path / "decl.toml"
    config.write_text('[persist."/persist"]\ndirectories = ["/var/lib"]\n\n'
                      '[persist."/data"]\ndirectories = ["/var/lib/db"]\n')

    def run() -> dict[str, object]:
        rc, out = _run(["apply", "--root", str(root), "--config", str(config)])
        (root / "var/lib/db/table").write_text("rows\n")
        (root / "var/lib/other").write_text("other\n")
        again = _run(["apply", "--root", str(root), "--config", str(config)])
        return {"rc": rc, "out": out, "outer": is_mounted(root / "var/lib"), "inner": is_mounted(root / "var/lib/db"),
                "again": again}

    got = in_mount_namespace(run)
    assert got["rc"] == 0, got["out"]
    assert got["outer"]
    assert got["inner"]
    assert (root / "data/var/lib/db/table").read_text() == "rows\n"  # in /data, not in /persist
    assert not (root / "persist/var/lib/db/table").exists()
    assert (root / "persist/var/lib/other").read_text() == "other\n"
    rc, out = _pair(got["again"])
    assert rc == 0, out
    assert "persist: unchanged" in out, out
