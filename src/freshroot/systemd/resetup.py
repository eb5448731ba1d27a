"""The last step of ``freshroot apply`` on a live systemd machine: restart
freshroot-tmpfiles-resetup.service, so tmpfiles.d (and the declaration's [tmpfiles] rules)
are applied again after a change, as NixOS's switch restarts systemd-tmpfiles-resetup.

Only on the running system (``--root /``, systemd booted): an offline root gets its
tmpfiles at its next boot. When the unit is not there yet (a [tmpfiles] section added since
boot) systemd is reloaded first, which re-runs freshroot-generator.

Only when it would change something, and the plan says what: the engine's decisions for the
root's tmpfiles.d and the declaration's rules (freshroot.tmpfiles.planned, the same the
``tmpfiles`` step lists on an offline root), or rendered rules that /run/tmpfiles.d does not
hold yet (the unit writes them there first), or a unit that is not generated yet. Otherwise the
step is unchanged, as the plan of an offline root is once applied.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from freshroot.config.table import Table
from freshroot.plan.action import Action, Context, Planner, Step
from freshroot.run import run
from freshroot.systemd.names import TMPFILES_RESETUP

STEP_NAME = "tmpfiles-resetup"
GENERATED = f"/run/systemd/generator/{TMPFILES_RESETUP}"


@dataclass(frozen=True)
class RestartResetup(Action):
    """Restart freshroot-tmpfiles-resetup.service (reloading systemd first when requested) after the rules changed."""
    reload: bool
    changes: tuple[str, ...] = ()  # what the unit's tmpfiles run would change, in plan words
    rewrite: tuple[str, ...] = ()  # the rendered files it writes into /run/tmpfiles.d first

    def describe(self) -> str:
        first = "reload systemd (re-running freshroot-generator), then " if self.reload else ""
        lines = [f"{first}restart {TMPFILES_RESETUP}"]
        lines += [f"write {path} (the [tmpfiles] rules changed)" for path in self.rewrite]
        return "\n".join([*lines, *self.changes])

    def apply(self, ctx: Context) -> None:
        if self.reload:
            run(["systemctl", "daemon-reload"])
        run(["systemctl", "restart", TMPFILES_RESETUP])


def live_systemd(ctx: Context) -> bool:
    return ctx.root in ("", "/") and os.path.isdir("/run/systemd/system")


def _planner(declaration: Table) -> Planner:
    def planner(ctx: Context) -> Iterable[Action]:
        if not live_systemd(ctx) or ctx.boot:  # at boot, the activation's own tmpfiles step
            return []
        from freshroot.tmpfiles.planned import decisions, stale_rendered

        reload = not os.path.exists(GENERATED)
        rewrite = tuple(stale_rendered(ctx.root_fd, declaration))
        _, found = decisions(ctx.root_fd, ctx.root, declaration)
        changes = tuple(c for d in found for c in d.changes)
        if not (reload or rewrite or changes):
            return []
        return [RestartResetup(reload=reload, changes=changes, rewrite=rewrite)]

    return planner


def resetup_steps(declaration: Table, after: Sequence[str] = ()) -> list[Step]:
    """The step, after every step in ``after``; nothing without a [tmpfiles] section."""
    if "tmpfiles" not in declaration:
        return []
    return [Step(STEP_NAME, _planner(declaration), tuple(after), description=f"restart {TMPFILES_RESETUP}",
                 location=declaration.location("tmpfiles"))]
