"""`freshroot apply` ends with restarting freshroot-tmpfiles-resetup.service on a live systemd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freshroot.compose import build_plan
from freshroot.config.table import Table
from freshroot.plan.action import Context
from freshroot.systemd import resetup
from freshroot.systemd.resetup import STEP_NAME, RestartResetup, resetup_steps


def table(data: dict[str, object]) -> Table:
    return Table(data, (), "freshroot.toml", {})


def test_step_comes_last_and_only_with_a_tmpfiles_section() -> None:
    assert resetup_steps(table({}), ["persist"]) == []
    steps = build_plan(table({"tmpfiles": {"rules": ["d /x - - - -"]}}))
    last = steps[-1]
    assert last.name == STEP_NAME
    assert set(last.deps) == {s.name for s in steps[:-1]}
    assert STEP_NAME not in {s.name for s in build_plan(table({}))}


def test_offline_root_is_left_to_its_next_boot(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_PATH)
    try:
        step = resetup_steps(table({"tmpfiles": {}}), [])[0]
        assert list(step.planner(Context(fd, str(tmp_path)))) == []
    finally:
        os.close(fd)


def test_live_root_restarts_only_when_tmpfiles_would_change(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The restart is planned, and says what it changes, when the unit is missing, the rendered
    rules are not in /run/tmpfiles.d yet, or the engine would change something; else nothing."""
    monkeypatch.setattr(resetup, "live_systemd", lambda ctx: True)
    monkeypatch.setattr(resetup, "GENERATED", str(tmp_path / "missing.service"))
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    step = resetup_steps(table({"tmpfiles": {"rules": ["d /srv/app 0750 root root -"]}}), [])[0]
    fd = os.open(root, os.O_PATH)
    try:
        ctx = Context(fd, str(root))
        actions = list(step.planner(ctx))
        # the changes name paths as the root sees them (docs/activation.md, "Paths in output")
        assert actions == [RestartResetup(reload=True, changes=("create directory /srv 0755",
                                                                "create directory /srv/app 0750 root:root"),
                                          rewrite=("/run/tmpfiles.d/00-freshroot.conf",))]
        assert "daemon-reload" not in actions[0].describe()  # said in words
        assert actions[0].describe().startswith("reload systemd")
        # What the unit does: render the rules, apply them.
        (tmp_path / "missing.service").write_text("")
        (root / "run/tmpfiles.d").mkdir(parents=True)
        (root / "run/tmpfiles.d/00-freshroot.conf").write_text("d /srv/app 0750 root root -\n")
        (root / "srv/app").mkdir(parents=True)
        os.chmod(root / "srv/app", 0o750)
        (root / "srv/app/data").write_text("whatever the service keeps")
        assert list(step.planner(ctx)) == []
        os.chmod(root / "srv/app", 0o755)
        drifted = RestartResetup(reload=False, changes=("set mode of /srv/app to 0750",))
        assert list(step.planner(ctx)) == [drifted]
    finally:
        os.close(fd)
