"""The handlers of ``freshroot apply`` and ``freshroot plan``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable

from freshroot.compose import build_plan, load_checked_files, plan_id
from freshroot.config.load import Loaded
from freshroot.errors import EXIT_FAILURE
from freshroot.fs.ops import open_root
from freshroot.plan.action import Context
from freshroot.plan.executor import execute
from freshroot.plan.journal import Journal
from freshroot.plan.lock import ApplyLock
from freshroot.plan.progress import TerminalProgress
from freshroot.plan.result import Report


def run_plan(
    root: str, config: list[str] | None, *, dry_run: bool, fail_fast: bool = False, fix: bool = False,
    progress: TerminalProgress | None = None, after: Callable[[Report, Loaded, str, int], None] | None = None,
    held: bool = False,
) -> Report:
    """``after(report, loaded, plan_id, root_fd)`` runs under the lock once the plan has run
    (apply keeps the declaration as a generation there); ``held``: the caller holds the lock
    (rollback)."""
    root_fd = open_root(root)
    try:
        # The whole declaration is checked before anything runs: no lock, no journal on a
        # bad one (every problem at once, exit 65).
        loaded = load_checked_files(root_fd, config, root=root)
        declaration = loaded.table
        steps = build_plan(declaration)
        ctx = Context(root_fd, root, dry_run=dry_run, action="dry-activate" if dry_run else "activate",
                      fix=fix)
        if dry_run:  # changes nothing: no lock file, no journal
            report = execute(steps, ctx, fail_fast=fail_fast, progress=progress)
            if after is not None:
                after(report, loaded, plan_id(declaration, steps), root_fd)
            return report
        pid = plan_id(declaration, steps)
        with contextlib.ExitStack() as stack:
            made = [] if held else stack.enter_context(ApplyLock(root_fd, root)).made
            with Journal.open(root_fd, pid, made=made) as journal:
                report = execute(steps, ctx, fail_fast=fail_fast, journal=journal, progress=progress)
            if after is not None:
                after(report, loaded, pid, root_fd)
            return report
    finally:
        if progress is not None:  # an interrupted run: no status line left ticking
            progress.close()
        os.close(root_fd)


def _finish(report: Report, as_json: bool, extra: dict[str, object] | None = None, note: str = "") -> int:
    if as_json:
        from freshroot.output import print_json

        print_json({**report.to_json(), **(extra or {})})
    else:
        from freshroot.output import colour_wanted, tree_chars

        rendered = report.render(chars=tree_chars(sys.stdout), colour=colour_wanted(sys.stdout))
        sys.stdout.write(rendered + "\n" + (note + "\n" if note else ""))
    return 0 if report.ok else EXIT_FAILURE


def apply_command(args: argparse.Namespace) -> int:
    if getattr(args, "boot", False):
        from freshroot.systemd.activate import boot_command

        return boot_command(args)
    keep = None
    if not args.dry_run:  # the applied declaration becomes a generation (freshroot.generations)
        from freshroot.generations.keep import KeepGeneration

        keep = KeepGeneration(args.root, confirm_timeout=args.confirm_timeout)
    report = run_plan(args.root, args.config, dry_run=args.dry_run, fail_fast=args.fail_fast, fix=args.fix,
                      progress=TerminalProgress(), after=keep)
    if keep is None:
        return _finish(report, args.json)
    return _finish(report, args.json, {"generation": keep.to_json()}, keep.note())


# plan --detailed-exitcode, as terraform plan's: changes pending (docs/exit-codes.md).
EXIT_CHANGES = 2


def plan_command(args: argparse.Namespace) -> int:
    from freshroot.generations.keep import CurrentGeneration

    current = CurrentGeneration(args.root)  # --json says which generation the root is at
    report = run_plan(args.root, args.config, dry_run=True, fix=args.fix, progress=TerminalProgress(),
                      after=current if args.json else None)
    # 1: a step would fail, or a refusal is predicted
    code = _finish(report, args.json, {"generation": current.to_json()} if args.json else None)
    if code == 0 and args.detailed_exitcode and report.changed:
        return EXIT_CHANGES
    return code
