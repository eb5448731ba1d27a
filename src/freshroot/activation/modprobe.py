"""The ``modprobe`` builtin, as NixOS's activation snippet of the same name: point the kernel's
module loader (/proc/sys/kernel/modprobe) at the modprobe binary the root actually has.

The kernel's default is /sbin/modprobe. On a merged-/usr root that path resolves (a symlink
to /usr/sbin/modprobe) and the step does nothing; it writes only when the current value does
not lead to an executable and one of the usual places has one. Only on the live root: the
sysctl is the running kernel's, not an offline root's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from freshroot.plan.action import Action, Context, Step

SYSCTL = "/proc/sys/kernel/modprobe"
CANDIDATES = ("/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe", "/bin/modprobe",
              "/run/current-system/sw/bin/modprobe")
STEP_NAME = "modprobe"


@dataclass(frozen=True)
class SetModprobe(Action):
    """Point the kernel's module loader at the modprobe this root has (the configured one does not
    exist)."""
    path: str
    old: str

    def describe(self) -> str:
        return f"set {SYSCTL} to {self.path} (was {self.old or 'empty'}, which does not exist)"

    def record(self) -> Mapping[str, Any]:
        return {"op": "sysctl", "path": SYSCTL, "old": self.old}

    def apply(self, ctx: Context) -> None:
        fd = os.open(SYSCTL, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            os.write(fd, self.path.encode() + b"\n")
        finally:
            os.close(fd)


def planned(current: str, executable: Any = None) -> str | None:
    """The path to write, or None when the current value already resolves."""
    ok = executable or (lambda p: os.access(p, os.X_OK) and os.path.isfile(p))
    if current and ok(current):
        return None
    return next((c for c in CANDIDATES if ok(c)), None)


def _planner(ctx: Context) -> Iterable[Action]:
    if ctx.root not in ("", "/"):
        return []
    try:
        with open(SYSCTL, encoding="utf-8") as f:
            current = f.read().strip()
    except OSError:
        return []  # no /proc, or a kernel without module loading
    path = planned(current)
    return [] if path is None else [SetModprobe(path, current)]


def modprobe_step() -> Step:
    return Step(STEP_NAME, _planner, ("specialfs",), description=f"{SYSCTL} points at the root's modprobe")
