"""The confirm timer of ``apply --confirm-timeout S``: roll back unless ``freshroot confirm``.

It must outlive the apply and the SSH connection that ran it (a change that cuts the
connection is the very case it is for). Two ways, chosen when it is armed:

- ``systemd-run --on-active=S``: a transient timer and service in the running systemd
  (``freshroot-rollback-N[-ROOTHASH].timer``), when the host runs systemd (/run/systemd/system
  exists, as sd_booted(3) checks) and systemd-run is there. ``confirm`` stops the timer.
- otherwise (no systemd: a container, a namespace, an initrd-less test root): a detached
  ``freshroot rollback --if-unconfirmed N --delay S`` process in a session of its own
  (:func:`freshroot.run.spawn_detached`); its pid and start time are kept in the generation,
  and ``confirm`` kills it if it is still that process.

Either way the rollback itself re-checks, under the apply lock, that the generation is still
pending and still current: a confirm that arrives while the timer fires wins or loses whole.
A reboot before the deadline loses the timer (both kinds); the generation then stays
"pending" until confirmed or rolled back by hand (docs/fleet.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from typing import Any

from freshroot.digest import sha256
from freshroot.plan.lock import start_time
from freshroot.run import run, spawn_detached

# Runs this very freshroot (the package's parent directory first on sys.path: a source tree,
# a site directory or a freshroot.pyz), whatever PATH the timer's service gets.
_BOOT = "import sys; sys.path.insert(0, sys.argv.pop(1)); from freshroot.cli import main; sys.exit(main(sys.argv[1:]))"
SYSTEMD = "systemd-run"
PROCESS = "process"


def freshroot_argv(*args: str) -> list[str]:
    import freshroot

    parent = os.path.dirname(os.path.dirname(os.path.abspath(freshroot.__file__)))
    return [sys.executable, "-I", "-c", _BOOT, parent, *args]


def has_systemd() -> bool:
    return os.path.isdir("/run/systemd/system") and shutil.which("systemd-run") is not None


def unit_name(number: int, root: str) -> str:
    suffix = "" if root in ("", "/") else "-" + sha256(root.encode()).hexdigest()[:8]
    return f"freshroot-rollback-{number}{suffix}"


def rollback_args(number: int, root: str, generations: str) -> list[str]:
    return ["rollback", "--if-unconfirmed", str(number), "--root", root, "--generations", generations]


def arm(number: int, seconds: int, *, root: str, generations: str, kind: str | None = None) -> dict[str, Any]:
    """Start the timer; what :func:`disarm` needs to stop it (kept in the generation)."""
    kind = kind or (SYSTEMD if has_systemd() else PROCESS)
    args = rollback_args(number, root, generations)
    if kind == SYSTEMD:
        unit = unit_name(number, root)
        run([SYSTEMD, f"--unit={unit}", f"--on-active={seconds}s", "--timer-property=AccuracySec=1s",
             f"--description=freshroot: roll back generation {number} unless confirmed", "--collect",
             "--", *freshroot_argv(*args)])
        return {"kind": SYSTEMD, "unit": unit}
    pid = spawn_detached(freshroot_argv(*args, "--delay", str(seconds)))
    return {"kind": PROCESS, "pid": pid, "start": start_time(pid)}


def disarm(timer: dict[str, Any] | None) -> None:
    """Stop the timer if it has not fired (the caller holds the apply lock: a rollback that
    already started waits on it, then finds the generation confirmed)."""
    if not timer:
        return
    if timer.get("kind") == SYSTEMD:
        run(["systemctl", "stop", f"{timer.get('unit')}.timer"], check=False)
        return
    pid, started = timer.get("pid"), timer.get("start")
    if isinstance(pid, int) and started is not None and start_time(pid) == started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
