"""The last step of ``freshroot apply`` on a live systemd machine: restart
freshroot-tmpfiles-resetup.service, so tmpfiles.d (and the declaration's [tmpfiles] rules)
are applied again after a change, as NixOS's switch restarts systemd-tmpfiles-resetup.

Only on the running system (``--root /``, systemd booted): an offline root gets its
tmpfiles at its next boot. When the unit is not there yet (a [tmpfiles] section added since
boot) systemd is reloaded first, which re-runs freshroot-generator.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from freshroot.config.table import Table
from freshroot.plan.action import Action, Context, Step
from freshroot.run import run
from freshroot.systemd.units import TMPFILES_RESETUP

STEP_NAME = "tmpfiles-resetup"
GENERATED = f"/run/systemd/generator/{TMPFILES_RESETUP}"


@dataclass(frozen=True)
class RestartResetup(Action):
    reload: bool

    def describe(self) -> str:
        first = "reload systemd (re-running freshroot-generator), then " if self.reload else ""
        return f"{first}restart {TMPFILES_RESETUP}"

    def apply(self, ctx: Context) -> None:
        if self.reload:
            run(["systemctl", "daemon-reload"])
        run(["systemctl", "restart", TMPFILES_RESETUP])


def live_systemd(ctx: Context) -> bool:
    return ctx.root in ("", "/") and os.path.isdir("/run/systemd/system")


def _planner(ctx: Context) -> Iterable[Action]:
    if not live_systemd(ctx) or ctx.options.get("boot"):  # at boot, the activation's own tmpfiles step
        return []
    return [RestartResetup(reload=not os.path.exists(GENERATED))]


def resetup_steps(declaration: Table, after: Sequence[str]) -> list[Step]:
    """The step, after every step in ``after``; nothing without a [tmpfiles] section."""
    if "tmpfiles" not in declaration:
        return []
    return [Step(STEP_NAME, _planner, tuple(after), description=f"restart {TMPFILES_RESETUP}",
                 location=declaration.location("tmpfiles"))]
