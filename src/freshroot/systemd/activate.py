"""``freshroot apply --boot``: the declaration's whole activation at every boot, in one process.

freshroot-activate.service (written by the generator, docs/systemd.md) runs it where NixOS
runs its activation script in stage 2: after the root and the storages are mounted
(local-fs.target), before sysinit.target's services (tmpfiles set-up, journal flush,
machine-id commit, random seed). It runs the very plan ``freshroot apply`` runs
(activation/plan.py: specialfs, modprobe, users and groups, machine id and host keys,
persistence, etc, binsh, usrbinenv, the snippets with FRESHROOT_ACTION=activate), so boot
and apply decide the same for every path, plus one boot-only step, tmpfiles: the
declaration's [tmpfiles] rules rendered into /run/tmpfiles.d (systemd-tmpfiles-setup.service
applies them next) and, with ``engine = "freshroot"``, tmpfiles.d applied by freshroot's
engine (``--create --remove --boot``, /dev excluded) in this same process.

Before anything, it marks the boot (persist/image.py): whether the root is fresh from its
image, which is what makes the image's content in a persisted path hideable.

Nothing stops at the first failure: a failed step is logged at priority err (``<3>`` when
stdout is the journal) and the others run; the exit status is then 1, so
``systemctl --failed`` names the unit, and the boot goes on (sysinit.target only wants it).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from freshroot.config.table import Table
from freshroot.plan.action import Action, Context, Step

if TYPE_CHECKING:
    import argparse

STEP_NAME = "tmpfiles"
RUN_TMPFILES = "/run/tmpfiles.d"


def _say(line: str, *, err: bool = False) -> None:
    """One line of the activation's account, on stdout (the journal and the console, as the
    unit says; failures on stderr when stdout is not the journal), with its priority."""
    from freshroot import log

    journal = log.is_journal(sys.stdout)
    log.say(line, log.ERR if err else log.INFO, sys.stdout if journal or not err else sys.stderr)


@dataclass(frozen=True)
class BootTmpfiles(Action):
    """The boot's tmpfiles run: the declaration's rules and the root's tmpfiles.d."""
    declaration: Table
    engine: str

    def describe(self) -> str:
        then = ", then tmpfiles.d --create --remove --boot (freshroot's engine)" if self.engine == "freshroot" else ""
        return f"render the [tmpfiles] rules into {RUN_TMPFILES}{then}"

    def record(self) -> Mapping[str, Any]:
        return {"op": "tmpfiles-boot"}

    def apply(self, ctx: Context) -> None:
        from freshroot.errors import OperationError
        from freshroot.fs.atomic import replace_at
        from freshroot.fs.ops import mkdir_parents
        from freshroot.tmpfiles.declaration import parse_section

        for r in parse_section(self.declaration.get_table("tmpfiles")).render():
            with mkdir_parents(ctx.root_fd, RUN_TMPFILES, 0o755) as d:
                replace_at(d.fd, r.name, r.text.encode(), mode=0o644, durable=False)
        if self.engine != "freshroot":
            return  # systemd-tmpfiles-setup.service, ordered after us, applies them
        from freshroot.tmpfiles.context import Context as TmpContext
        from freshroot.tmpfiles.context import Operation, Options
        from freshroot.tmpfiles.executor import run_phases
        from freshroot.tmpfiles.load import LoadOptions, load
        from freshroot.tmpfiles.messages import Level, stderr_reporter

        config = load(LoadOptions(root=ctx.root or "/", boot=True, exclude_prefixes=("/dev",)),
                      stderr_reporter(Level.ERR))
        old_umask = os.umask(0)
        try:
            status = run_phases(TmpContext(Options(root_fd=ctx.root_fd, root=ctx.root), config),
                                Operation.CREATE | Operation.REMOVE)
        finally:
            os.umask(old_umask)
        if status != 0:
            raise OperationError(f"tmpfiles.d: exit status {status}; the messages above name the lines")


def boot_tmpfiles_step(declaration: Table, after: Iterable[str]) -> list[Step]:
    if "tmpfiles" not in declaration:
        return []
    from freshroot.systemd.settings import engine

    kind = engine(declaration)

    def planner(ctx: Context) -> Iterable[Action]:
        return [BootTmpfiles(declaration, str(kind.value if kind else "systemd"))]

    return [Step(f"{STEP_NAME}-boot", planner, tuple(after), description="tmpfiles.d at boot",
                 location=declaration.location("tmpfiles"))]


def boot_plan(declaration: Table) -> list[Step]:
    """``apply``'s plan, and tmpfiles at boot after everything else. A feature whose section is
    wrong gets a failed step (said at priority err, its dependents skipped); the others run:
    one bad [etc] entry must not cost the boot its users and persisted paths."""
    from freshroot.compose import build_plan
    from freshroot.errors import Problems

    steps = build_plan(declaration, Problems())
    return steps + boot_tmpfiles_step(declaration, [s.name for s in steps])


def unknown_sections(declaration: Table) -> list[str]:
    """Top-level sections no feature owns, which ``config check`` and ``apply`` refuse: at boot
    they are said (priority err) and the rest is activated. The generator checks nothing (it
    replays or builds the units); each step reports its own section's errors."""
    from freshroot.features import BY_SECTION

    return [f"{declaration.location(name)}: unknown section [{name}]; ignored at boot "
            "(`freshroot config check` says more)" for name in declaration if name not in BY_SECTION]


def boot(root: str, config: list[str] | None) -> int:
    from freshroot.config.load import load_declaration
    from freshroot.errors import FreshrootError
    from freshroot.fs.ops import open_root
    from freshroot.persist.image import mark_boot
    from freshroot.plan.executor import execute
    from freshroot.plan.journal import Journal
    from freshroot.plan.lock import ApplyLock
    from freshroot.plan.result import Status

    started = time.monotonic()
    root_fd = open_root(root)
    try:
        try:
            mark = mark_boot(root_fd)
            declaration = load_declaration(root_fd, config, root=root)
            steps = boot_plan(declaration)
        except (FreshrootError, OSError) as e:
            _say(f"freshroot: no activation this boot: {e}", err=True)
            return 1
        _say(f"freshroot: activating at boot ({'root fresh from its image' if mark.fresh else 'root kept'})")
        for line in unknown_sections(declaration):
            _say(f"freshroot: {line}", err=True)
        ctx = Context(root_fd, root, action="activate", boot=True)
        from freshroot.compose import plan_id

        with ApplyLock(root_fd, root), Journal.open(root_fd, plan_id(declaration, steps)) as journal:
            report = execute(steps, ctx, journal=journal)
    finally:
        os.close(root_fd)
    for r in report.results:
        if r.status is Status.FAILED:
            where = f" ({r.location})" if r.location else ""
            _say(f"freshroot: step {r.name} failed{where}: {r.error}", err=True)
        for line in r.output:
            _say(f"freshroot: {r.name}: {line}")
        for action in r.actions:
            _say(f"freshroot: {r.name}: {action}")
    failed = [r.name for r in report.failed]
    slowest = sorted(report.results, key=lambda r: r.duration, reverse=True)[:3]
    timing = ", ".join(f"{r.name} {r.duration:.2f} s" for r in slowest)
    _say(f"freshroot: activation done, {len(report.results)} steps in {time.monotonic() - started:.2f} s "
         f"(slowest: {timing})" + (f"; failed: {', '.join(failed)}" if failed else ""), err=bool(failed))
    return 0 if report.ok else 1


def boot_command(args: argparse.Namespace) -> int:
    return boot(args.root, args.config)


def main(root: str = "/") -> int:
    """``freshroot apply --boot`` as the boot runs it (freshroot/__main__.py): no parser; an
    error ends as cli.dispatch ends it (the same message and exit code), never in a traceback."""
    from freshroot import log
    from freshroot.errors import EXIT_CANTCREAT, FreshrootError, os_error_message

    log.setup()
    try:
        return boot(root, None)
    except FreshrootError as e:
        log.error(f"freshroot: {e}")
        return e.exit_code
    except OSError as e:
        log.error(f"freshroot: {os_error_message(e)}")
        return EXIT_CANTCREAT
    except Exception as e:  # noqa: BLE001 (the last line of defence, as cli.dispatch has)
        log.error(f"freshroot: internal error: {type(e).__name__}: {e}\n"
                  "hint: `freshroot apply --boot --debug` shows the traceback; please report it")
        return FreshrootError.exit_code
