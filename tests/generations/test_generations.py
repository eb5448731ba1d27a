"""Generations, rollback and the confirm timer on a scratch root (no mounts: [etc] files only,
so the generations land in /var/lib/freshroot/generations of the root)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from freshroot.cli import main
from freshroot.generations import timer
from freshroot.plan.lock import start_time

pytestmark = pytest.mark.root  # files owned by root:root in the scratch root

GENS = "var/lib/freshroot/generations"


def _decl(path: Path, motd: str) -> str:
    path.write_text(f'[etc."motd"]\ntext = "{motd}\\n"\nforce = true\n')
    return str(path)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def _root(scratch: Path) -> Path:
    root = scratch / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    return root


def test_apply_keeps_one_generation_per_declaration(scratch, capsys):
    root = _root(scratch)
    a, b = _decl(scratch / "a.toml", "one"), _decl(scratch / "b.toml", "two")
    code, out = _json(capsys, ["apply", "--root", str(root), "--config", a, "--json"])
    assert code == 0
    assert out["generation"]["number"] == 1
    assert out["generation"]["new"] is True
    code, out = _json(capsys, ["apply", "--root", str(root), "--config", a, "--json"])
    assert (out["generation"]["number"], out["generation"]["new"]) == (1, False)
    code, out = _json(capsys, ["apply", "--root", str(root), "--config", b, "--json"])
    assert (out["generation"]["number"], out["generation"]["new"]) == (2, True)
    # The kept bytes are the applied file's, with their metadata.
    meta = json.loads((root / GENS / "2/meta.json").read_text())
    assert meta["files"][0]["path"] == b
    assert meta["plan"]
    assert meta["version"]
    assert (root / GENS / "2/files" / meta["files"][0]["name"]).read_text() == Path(b).read_text()
    assert (root / GENS / "current").read_text() == "2\n"
    assert oct((root / GENS).stat().st_mode & 0o777) == "0o700"
    code, listing = _json(capsys, ["generations", "--root", str(root), "--config", b, "--json"])
    assert [g["number"] for g in listing["generations"]] == [1, 2]
    assert [g["current"] for g in listing["generations"]] == [False, True]


def test_dry_run_keeps_nothing(scratch, capsys):
    root = _root(scratch)
    a = _decl(scratch / "a.toml", "one")
    assert main(["apply", "--root", str(root), "--config", a, "--dry-run"]) == 0
    assert not (root / GENS).exists()


def test_rollback_reapplies_the_previous_generation_then_a_chosen_one(scratch, capsys):
    root = _root(scratch)
    a, b, c = (_decl(scratch / f"{n}.toml", n) for n in ("one", "two", "three"))
    for decl in (a, b, c):
        assert main(["apply", "--root", str(root), "--config", decl]) == 0
    assert (root / "etc/motd").read_text() == "three\n"
    code, out = _json(capsys, ["rollback", "--root", str(root), "--config", c, "--json"])
    assert code == 0
    assert (out["rollback"]["from"], out["rollback"]["to"]) == (3, 2)
    assert (root / "etc/motd").read_text() == "two\n"
    assert main(["rollback", "--root", str(root), "--config", c, "--to", "1"]) == 0
    assert (root / "etc/motd").read_text() == "one\n"
    assert (root / GENS / "current").read_text() == "1\n"
    # Applying generation 3's declaration again makes no new generation? It does: 3 is not
    # current; the same bytes as an older one are a new generation (NixOS's rule too).
    code, out = _json(capsys, ["apply", "--root", str(root), "--config", c, "--json"])
    assert (out["generation"]["number"], out["generation"]["new"]) == (4, True)


def test_rollback_without_an_earlier_generation_fails_cleanly(scratch, capsys):
    root = _root(scratch)
    a = _decl(scratch / "a.toml", "one")
    assert main(["apply", "--root", str(root), "--config", a]) == 0
    assert main(["rollback", "--root", str(root), "--config", a]) == 73
    assert main(["rollback", "--root", str(root), "--config", a, "--to", "9"]) == 65
    assert (root / "etc/motd").read_text() == "one\n"


def test_rollback_puts_discovered_declaration_files_back(scratch, capsys):
    root = _root(scratch)
    conf = root / "etc/freshroot"
    conf.mkdir()
    _decl(conf / "freshroot.toml", "one")
    assert main(["apply", "--root", str(root)]) == 0
    _decl(conf / "freshroot.toml", "two")
    (conf / "conf.d").mkdir()
    _decl(conf / "conf.d/extra.toml", "three")
    assert main(["apply", "--root", str(root)]) == 0
    assert (root / "etc/motd").read_text() == "three\n"
    assert main(["rollback", "--root", str(root)]) == 0
    # The next boot reads what generation 1 read: the main file as it was, the drop-in gone.
    assert (conf / "freshroot.toml").read_text() == Path(_decl(scratch / "x.toml", "one")).read_text()
    assert not (conf / "conf.d/extra.toml").exists()
    assert (root / "etc/motd").read_text() == "one\n"


def _wait_gone(pid: int, started: int | None, seconds: float) -> bool:
    """The detached timer process has exited (this test process is its parent: reap it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if start_time(pid) != started:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_confirm_timer_rolls_back_unless_confirmed(scratch, capsys, monkeypatch):
    monkeypatch.setattr(timer, "has_systemd", lambda: False)  # the detached-process timer
    root = _root(scratch)
    a, b, c = (_decl(scratch / f"{n}.toml", n) for n in ("one", "two", "three"))
    assert main(["apply", "--root", str(root), "--config", a]) == 0
    # Not confirmed: after 1 s it rolls back by itself.
    code, out = _json(capsys, ["apply", "--root", str(root), "--config", b, "--confirm-timeout", "1", "--json"])
    assert out["generation"]["confirm"] == "pending"
    meta = json.loads((root / GENS / "2/meta.json").read_text())
    pid, started = meta["confirm"]["timer"]["pid"], meta["confirm"]["timer"]["start"]
    try:
        assert _wait_gone(pid, started, 30)
    finally:
        if start_time(pid) == started:
            os.kill(pid, 9)
    assert (root / "etc/motd").read_text() == "one\n"
    assert json.loads((root / GENS / "2/meta.json").read_text())["confirm"]["state"] == "rolled-back"
    assert (root / GENS / "current").read_text() == "1\n"
    assert main(["confirm", "--root", str(root), "--config", b]) == 1  # too late
    # Confirmed in time: the timer process is stopped and the generation stays.
    code, out = _json(capsys, ["apply", "--root", str(root), "--config", c, "--confirm-timeout", "60", "--json"])
    meta = json.loads((root / GENS / "3/meta.json").read_text())
    pid, started = meta["confirm"]["timer"]["pid"], meta["confirm"]["timer"]["start"]
    try:
        assert start_time(pid) == started
        code, out = _json(capsys, ["confirm", "--root", str(root), "--config", c, "--json"])
        assert (code, out["state"], out["generation"]) == (0, "confirmed", 3)
        assert _wait_gone(pid, started, 10)
    finally:
        if start_time(pid) == started:
            os.kill(pid, 9)
    assert (root / "etc/motd").read_text() == "three\n"
    assert json.loads((root / GENS / "3/meta.json").read_text())["confirm"]["state"] == "confirmed"


def test_systemd_timer_is_a_transient_unit_named_for_the_generation(monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setattr(timer, "run", lambda argv, **kw: calls.append(list(argv)))
    armed = timer.arm(7, 30, root="/", generations="/persist/.freshroot/generations", kind=timer.SYSTEMD)
    assert armed == {"kind": "systemd-run", "unit": "freshroot-rollback-7"}
    argv = calls[0]
    assert argv[0] == "systemd-run"
    assert "--unit=freshroot-rollback-7" in argv
    assert "--on-active=30s" in argv
    tail = argv[argv.index("--") + 1:]
    assert tail[-6:] == ["--if-unconfirmed", "7", "--root", "/", "--generations", "/persist/.freshroot/generations"]
    timer.disarm(armed)
    assert calls[1] == ["systemctl", "stop", "freshroot-rollback-7.timer"]
    assert timer.unit_name(7, "/mnt") != timer.unit_name(7, "/")
