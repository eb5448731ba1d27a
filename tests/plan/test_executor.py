"""The executor: ordering, keep-going, fail-fast, dry runs, the journal and the lock."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import pytest

from freshroot.errors import ConfigError, Location, OperationError
from freshroot.fs.ops import open_root
from freshroot.plan import journal as journal_mod
from freshroot.plan.action import Action, Context, Step
from freshroot.plan.executor import execute, order
from freshroot.plan.journal import Journal
from freshroot.plan.lock import ApplyLock, LockHeldError
from freshroot.plan.records import Record, UndoReport, record_type
from freshroot.plan.result import Status


@dataclass(frozen=True)
class Note(Action):
    """Appends its name to a list: lets the tests see what was applied and in which order."""

    log: list[str]
    text: str
    fail: bool = False

    def describe(self) -> str:
        return f"note {self.text}"

    def apply(self, ctx: Context) -> None:
        if self.fail:
            raise OperationError(f"{self.text} broke")
        self.log.append(self.text)

    def records(self, ctx: Context) -> Sequence[Record]:
        return (Noted(self.text),)


@record_type
@dataclass(frozen=True)
class Noted(Record):
    TYPE: ClassVar[str] = "test.note"
    text: str

    def revert(self, ctx: Context, report: UndoReport) -> None:
        report.done.append(f"unnote {self.text}")


def step(name: str, log: list[str], *deps: str, fail: bool = False, actions: int = 1, dry: bool = True) -> Step:
    def planner(ctx: Context) -> Iterable[Action]:
        return [Note(log, name, fail) for _ in range(actions)]

    return Step(name, planner, deps, supports_dry_run=dry, location=Location("decl.toml", len(name)))


def ctx_for(root: str, *, dry_run: bool = False) -> Context:
    return Context(root_fd=open_root(root), root=root, dry_run=dry_run)


def test_order_respects_deps_and_breaks_ties_by_name():
    log: list[str] = []
    steps = [step("z", log), step("b", log, "z"), step("a", log, "etc"), step("etc", log), step("c", log)]
    assert [s.name for s in order(steps)] == ["c", "etc", "a", "z", "b"]


def test_cycle_is_named_with_location():
    log: list[str] = []
    with pytest.raises(ConfigError) as e:
        order([step("a", log, "b"), step("b", log, "a"), step("c", log)])
    text = str(e.value)
    assert "a => b => a" in text or "b => a => b" in text
    assert text.startswith("decl.toml:")


def test_unknown_dependency_names_it_and_suggests():
    log: list[str] = []
    with pytest.raises(ConfigError, match=r"'a' depends on 'ect', which is not defined") as e:
        order([step("a", log, "ect"), step("etc", log)])
    assert "did you mean 'etc'" in str(e.value)


def test_keep_going_skips_only_dependents(tmp_path):
    log: list[str] = []
    steps = [step("a", log, fail=True), step("b", log, "a"), step("c", log, "b"), step("d", log)]
    report = execute(steps, ctx_for(str(tmp_path)))
    assert not report.ok
    assert [r.name for r in report.failed] == ["a"]
    assert report.result("b").status is Status.SKIPPED
    assert report.result("c").status is Status.SKIPPED
    assert "'b' was not run" in (report.result("c").reason or "")
    assert log == ["d"]
    assert json.loads(json.dumps(report.to_json()))["failed"] == ["a"]


def test_fail_fast_stops(tmp_path):
    log: list[str] = []
    report = execute([step("a", log, fail=True), step("d", log)], ctx_for(str(tmp_path)), fail_fast=True)
    assert report.result("d").status is Status.SKIPPED
    assert log == []


def test_dry_run_lists_without_applying(tmp_path):
    log: list[str] = []
    called: list[str] = []

    def never(ctx: Context) -> Iterable[Action]:
        called.append("x")
        return []

    steps = [step("a", log, actions=2), Step("nodry", never, supports_dry_run=False)]
    report = execute(steps, ctx_for(str(tmp_path), dry_run=True))
    assert log == []
    assert called == []
    assert report.result("a").status is Status.CHANGED
    assert report.result("a").actions == ("note a", "note a")
    assert report.result("nodry").status is Status.SKIPPED
    assert "would change" in report.render()


def test_unchanged_when_no_actions(tmp_path):
    log: list[str] = []
    report = execute([step("a", log, actions=0)], ctx_for(str(tmp_path)))
    assert report.result("a").status is Status.UNCHANGED
    assert report.ok


def test_journal_resumes_an_unfinished_run(tmp_path):
    log: list[str] = []
    root_fd = open_root(str(tmp_path))
    def interrupted(ctx: Context) -> Iterable[Action]:
        raise KeyboardInterrupt  # the run dies during "b": not a step failure, nothing finishes

    with Journal.open(root_fd, "plan1") as j:
        with pytest.raises(KeyboardInterrupt):
            execute([step("a", log), Step("b", interrupted, ("a",))], ctx_for(str(tmp_path)), journal=j)
        run_id = j.run_id
    log.clear()
    with Journal.open(root_fd, "plan1") as j:
        assert j.resuming
        assert j.run_id == run_id
        report = execute([step("a", log), step("b", log, "a")], ctx_for(str(tmp_path)), journal=j)
    assert log == ["b"]
    assert report.result("a").resumed
    data = journal_mod.read(root_fd)
    assert data is not None
    assert data["state"] == "finished"
    # each change recorded once, typed, before it was made (b's planner died before any)
    assert data["changes"] == [{"step": "a", "record": {"type": "test.note", "v": 1, "text": "a"}},
                               {"step": "b", "record": {"type": "test.note", "v": 1, "text": "b"}}]
    # a finished run is not resumed: everything runs again, records accumulate
    with Journal.open(root_fd, "plan1") as j:
        assert not j.resuming
        assert j.run_id != run_id


def test_journal_other_plan_starts_afresh(tmp_path):
    root_fd = open_root(str(tmp_path))
    with Journal.open(root_fd, "plan1") as j:
        j.step_started("a")
    with Journal.open(root_fd, "plan2") as j:
        assert not j.resuming


def test_lock_held_names_the_holder(tmp_path):
    root_fd = open_root(str(tmp_path))
    with ApplyLock(root_fd, str(tmp_path)), pytest.raises(LockHeldError, match=rf"pid {os.getpid()}"):
        ApplyLock(root_fd, str(tmp_path)).acquire()
    with ApplyLock(root_fd, str(tmp_path)):
        pass
