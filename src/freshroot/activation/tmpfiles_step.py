"""The ``tmpfiles`` builtin step: the tmpfiles.d create (and remove) phase, as part of apply.

On a live systemd machine, tmpfiles.d is systemd's job at boot, and ``tmpfiles-resetup``
re-applies it after an apply (freshroot.systemd.resetup). Everywhere else (an offline root
such as /mnt, a machine without systemd) this step applies it: the root's own tmpfiles.d
files plus the declaration's rendered [tmpfiles] rules (as if in /run/tmpfiles.d, where the
boot unit puts them), with freshroot's engine, ``--create --remove`` as systemd's
tmpfiles-resetup does, excluding /dev (and /proc, /run, /sys on an offline root).

The plan is the engine's own decisions (freshroot.tmpfiles.decide): the phases are walked in
the engine's order, comparing each line with the root, and every line that would change
something is one action, described change by change ("create directory /srv/data 0750
root:root", "set mode of /var/lib/x to 0700", "remove /var/tmp/y"). Applying an action runs
the engine on that line (executor.process_item, in the order the engine would), so what is
made is exactly what systemd-tmpfiles makes; a line with nothing to change is not run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from freshroot.config.table import Table
from freshroot.errors import Location, OperationError
from freshroot.plan.action import Action, Context, Step
from freshroot.rootpaths import in_root

if TYPE_CHECKING:  # the engine is imported when a plan is made, not when the CLI starts
    from freshroot.tmpfiles.context import Context as TmpContext
    from freshroot.tmpfiles.context import Operation
    from freshroot.tmpfiles.decide import Decision

STEP_NAME = "tmpfiles"


def _live_systemd(ctx: Context) -> bool:
    from freshroot.systemd.resetup import live_systemd

    return live_systemd(ctx)


@dataclass(eq=False)
class _Session:
    """The engine's context shared by the actions of one plan, and what failed so far: as
    systemd-tmpfiles, a failed line does not stop the others; the last action says so."""

    tmp: TmpContext
    pending: int
    phase: Operation | None = None
    failed: list[str] = field(default_factory=list)

    def run(self, decision: Decision) -> None:
        from freshroot.tmpfiles.context import Operation
        from freshroot.tmpfiles.executor import process_item

        item = decision.item
        phase = Operation.CREATE if decision.operation is Operation.CREATE else Operation.REMOVE
        if phase is not self.phase:
            self.tmp.forget_dirs()  # as run_phases does between phases
            self.phase = phase
        old_umask = os.umask(0)  # systemd-tmpfiles creates with explicit modes under umask 0
        try:
            ok = process_item(self.tmp, item, decision.operation)
        finally:
            os.umask(old_umask)
            self.pending -= 1
        if not ok:  # the reader names the file below the root, as systemd-tmpfiles --root does
            where = Location(in_root(item.location.file, self.tmp.options.root), item.location.line)
            self.failed.append(f"{where}: {item.spec} {item.path}")
        if self.pending == 0:
            self.tmp.forget_dirs()
            if self.failed:
                raise OperationError(f"tmpfiles.d: {len(self.failed)} line(s) failed (the messages above say "
                                     f"why): {'; '.join(self.failed)}")


@dataclass(frozen=True)
class ApplyLine(Action):
    """One tmpfiles.d line that would change something, applied by the engine."""

    decision: Decision
    session: _Session = field(compare=False, repr=False)

    def describe(self) -> str:
        return "\n".join(self.decision.changes)

    def apply(self, ctx: Context) -> None:
        self.session.run(self.decision)


def tmpfiles_steps(declaration: Table, deps: Iterable[str]) -> list[Step]:
    def planner(ctx: Context) -> Iterable[Action]:
        if ctx.boot or _live_systemd(ctx):
            # systemd applies tmpfiles.d; tmpfiles-resetup re-applies it after apply. At boot
            # the activation's own last step (tmpfiles-boot) does, live or not: once.
            return []
        from freshroot.tmpfiles.planned import decisions

        tmp, found = decisions(ctx.root_fd, ctx.root, declaration)
        session = _Session(tmp, len(found))
        return [ApplyLine(d, session) for d in found]

    location = declaration.location("tmpfiles") if "tmpfiles" in declaration else None
    return [Step(STEP_NAME, planner, tuple(deps), description="apply tmpfiles.d (offline root, or no systemd)",
                 location=location)]
