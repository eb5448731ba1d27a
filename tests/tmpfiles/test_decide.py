"""The plan's tmpfiles decisions (freshroot.tmpfiles.decide) are exact, in both directions, on
every hand-written differential case (tests/tmpfiles/cases.py) that runs --create and/or
--remove:

- applying only the lines with decisions, through the engine, gives the very tree the whole
  engine gives (which the differential suites compare with systemd-tmpfiles), and the same
  failure;
- no decision: the whole engine changes nothing;
- a decision that is not one of the honest "cannot tell" kinds (a write at every apply, a
  line that fails) is a change the engine makes;
- after applying, the plan is empty unless the configuration is one the engine changes at
  every run (then applying again changes the tree again, or the lines are of those kinds).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from freshroot.errors import OperationError
from freshroot.tmpfiles.context import Context, Operation, Options
from freshroot.tmpfiles.decide import Decision, decide
from freshroot.tmpfiles.executor import run_phases
from freshroot.tmpfiles.load import LoadOptions, load
from freshroot.tmpfiles.messages import Level, stderr_reporter
from freshroot.tmpfiles.model import Config
from tests.tmpfiles.cases import all_cases
from tests.tmpfiles.harness import Case, diff_trees, materialize, snapshot

pytestmark = [pytest.mark.root]

_OPS = {"--create": Operation.CREATE, "--remove": Operation.REMOVE}
_PLAIN = {"--create", "--remove", "--boot", "-E"}
CASES = [c for c in all_cases()
         if set(c.args) <= _PLAIN and any(a in _OPS for a in c.args)]
# Configurations whose lines undo each other, so the engine makes the same changes at every run
# (d sets 0755, then z sets 0700; r removes a file, f makes it again): the plan lists them after
# an apply too, and applying them again leaves the tree as it was.
CYCLES = frozenset({"z-then-d", "d-and-z-same-path", "e-and-d", "glob-order", "glob-below-dir-link",
                    "remove-create-order"})
# Decisions that say the engine may change nothing visible, or fails: not claims of a change.
HONEST = ("fail: ", "apply '", "at every apply")


def _load(case: Case, root: Path, conf: Path) -> Config:
    from freshroot.tmpfiles.commands import build_parser

    args = build_parser().parse_args([f"--root={root}", *case.args, str(conf)])
    with contextlib.redirect_stderr(io.StringIO()):
        return load(LoadOptions.from_args(args), stderr_reporter(Level.ERR))


def _operations(case: Case) -> Operation:
    ops = Operation.NONE
    for a in case.args:
        ops |= _OPS.get(a, Operation.NONE)
    return ops


class _Root:
    """One scratch root of a case, with its fd and the case's environment."""

    def __init__(self, case: Case, path: Path, conf: Path) -> None:
        self.case, self.path, self.conf = case, path, conf
        self.held = materialize(path, case.tree, case.base)
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY)

    def close(self) -> None:
        os.close(self.fd)
        for s in self.held:
            s.close()

    def context(self) -> Context:
        return Context(Options(root_fd=self.fd, root=str(self.path)), _load(self.case, self.path, self.conf))

    def decide(self) -> list[Decision]:
        with contextlib.redirect_stderr(io.StringIO()):
            return decide(self.context(), _operations(self.case))

    def run_all(self) -> int:
        """The whole engine, as `freshroot-tmpfiles` runs it."""
        old = os.umask(0)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                return run_phases(self.context(), _operations(self.case))
        finally:
            os.umask(old)

    def apply(self, decisions: list[Decision], ctx: Context) -> bool:
        """The lines with decisions, through the engine, as `freshroot apply` runs them."""
        from freshroot.activation.tmpfiles_step import ApplyLine, _Session
        from freshroot.plan.action import Context as PlanContext

        session = _Session(ctx, len(decisions))
        plan_ctx = PlanContext(self.fd, str(self.path))
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                for d in decisions:
                    ApplyLine(d, session).apply(plan_ctx)
        except OperationError:
            return False
        return True


def _claims(decisions: list[Decision]) -> list[str]:
    return [c for d in decisions for c in d.changes if not any(h in c for h in HONEST)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_plan_is_exact(case: Case, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    conf = scratch / "case.conf"
    conf.write_text(case.config)
    whole, planned = _Root(case, scratch / "whole", conf), _Root(case, scratch / "planned", conf)
    try:
        before = snapshot(planned.path)
        # A configuration with bad lines: the engine applies the others and exits 65 for the
        # bad ones (which no decision names); the planned lines then all succeed.
        invalid = planned.context().config.invalid
        status = whole.run_all()
        after_whole = snapshot(whole.path)
        ctx = planned.context()
        with contextlib.redirect_stderr(io.StringIO()):
            decisions = decide(ctx, _operations(case))
        ok = planned.apply(decisions, ctx)
        after_plan = snapshot(planned.path)
        said = "\n".join(f"{d.item.spec} {d.item.path}: {c}" for d in decisions for c in d.changes)
        problems = diff_trees(after_whole, after_plan, ("whole engine", "planned lines"))
        assert not problems, f"the planned lines do not give the engine's tree:\n{said}\n" + "\n".join(problems)
        expected_ok = status == 0 or (invalid and status == 65)
        assert ok == expected_ok, f"engine exit status {status}, planned lines ok={ok}\n{said}"
        failing = [c for d in decisions for c in d.changes if c.startswith(("fail: ", "apply '"))]
        assert not failing or status != 0, f"the plan says lines fail, the engine does not fail:\n{said}"
        every = [d for d in decisions if any("at every apply" in c for c in d.changes)]
        assert all(d.item.type.value in "wc" for d in every), said
        if not decisions:
            assert after_whole == before, "no decision, but the engine changed:\n" + "\n".join(
                diff_trees(before, after_whole, ("before", "after")))
        elif _claims(decisions):
            assert after_whole != before, f"the plan claims changes the engine does not make:\n{said}"
        again = planned.decide()
        assert again or case.name not in CYCLES, "not a cycle any more: take it off CYCLES"
        if again:
            # Only a configuration the engine changes at every run may have decisions left.
            said_again = "\n".join(f"{d.item.spec} {d.item.path}: {c}" for d in again for c in d.changes)
            planned.run_all()
            if case.name in CYCLES:
                assert snapshot(planned.path) == after_plan
                assert [d.changes for d in planned.decide()] == [d.changes for d in again]
            else:
                assert not _claims(again) or snapshot(planned.path) != after_plan, (
                    f"after apply the plan still lists changes the engine does not make:\n{said_again}")
    finally:
        whole.close()
        planned.close()


def test_nothing_to_decide_in_a_users_directory_once_applied(scratch: Path) -> None:
    """Lines below a directory a user owns: the engine opens that directory with the SAFE
    walk and makes its nodes with *at() calls in it, never judging the node it made by the
    SAFE rule; the plan looks at them the same way (it once refused the root-owned symlink
    in alice's directory and listed the L line at every plan)."""
    config = ("d /home/a 0700 alice alice -\nL /home/a/current - - - - config\n"
              "f /home/a/config 0600 alice alice - x\np /home/a/fifo 0600 alice -\n"
              "d /home/a/sub 0700 root root -\nw /home/a/config - - - - x\n")
    case = Case("users-directory", config, args=("--create",))
    conf = scratch / "case.conf"
    conf.write_text(config)
    root = _Root(case, scratch / "root", conf)
    try:
        first = root.decide()
        assert [c for d in first for c in d.changes][:2] == [f"create directory {root.path}/home 0755",
                                                             f"create directory {root.path}/home/a 0700 alice:alice"]
        assert root.run_all() == 0
        assert root.decide() == []
    finally:
        root.close()


def test_recursive_lines_hold_one_directory_per_level(scratch: Path) -> None:
    """Z over a wide tree is decided within a small fd budget (the walk once held an fd for
    every entry still to visit)."""
    import resource

    config = "Z /wide 0700 - -\n"
    case = Case("wide-Z", config, args=("--create",))
    conf = scratch / "case.conf"
    conf.write_text(config)
    root = _Root(case, scratch / "root", conf)
    for i in range(20):
        sub = root.path / "wide" / f"d{i}"
        sub.mkdir(parents=True)
        for j in range(50):
            (sub / f"f{j}").write_text("")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(100, hard), hard))
    try:
        decisions = root.decide()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        root.close()
    assert len([c for d in decisions for c in d.changes]) == 1 + 20 + 20 * 50  # every entry's mode
