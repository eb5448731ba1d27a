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


def test_live_root_restarts_and_reloads_when_unit_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(resetup, "live_systemd", lambda ctx: True)
    monkeypatch.setattr(resetup, "GENERATED", str(tmp_path / "missing.service"))
    step = resetup_steps(table({"tmpfiles": {}}), [])[0]
    actions = list(step.planner(Context(-1, "/")))
    assert actions == [RestartResetup(reload=True)]
    assert "daemon-reload" not in actions[0].describe()  # said in words
    assert actions[0].describe().startswith("reload systemd")
    (tmp_path / "missing.service").write_text("")
    assert list(step.planner(Context(-1, "/"))) == [RestartResetup(reload=False)]
