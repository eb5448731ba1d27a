"""The handlers of ``freshroot apply`` and ``freshroot plan``."""

from __future__ import annotations

import argparse
import os
import sys

from freshroot.compose import build_plan, load_checked, plan_id
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
    progress: TerminalProgress | None = None,
) -> Report:
    root_fd = open_root(root)
    try:
        # The whole declaration is checked before anything runs: no lock, no journal on a
        # bad one (every problem at once, exit 65).
        declaration = load_checked(root_fd, config, root=root)
        steps = build_plan(declaration)
        ctx = Context(root_fd, root, dry_run=dry_run, action="dry-activate" if dry_run else "activate",
                      fix=fix)
        if dry_run:  # changes nothing: no lock file, no journal
            return execute(steps, ctx, fail_fast=fail_fast, progress=progress)
        with ApplyLock(root_fd, root) as lock, \
                Journal.open(root_fd, plan_id(declaration, steps), root=root, made=lock.made) as journal:
            return execute(steps, ctx, fail_fast=fail_fast, journal=journal, progress=progress)
    finally:
        os.close(root_fd)


def _finish(report: Report, as_json: bool) -> int:
    if as_json:
        from freshroot.output import print_json

        print_json(report.to_json())
    else:
        from freshroot.output import colour_wanted, tree_chars

        sys.stdout.write(report.render(chars=tree_chars(sys.stdout), colour=colour_wanted(sys.stdout)) + "\n")
    return 0 if report.ok else EXIT_FAILURE


def apply_command(args: argparse.Namespace) -> int:
    if getattr(args, "boot", False):
        from freshroot.systemd.activate import boot_command

        return boot_command(args)
    report = run_plan(args.root, args.config, dry_run=args.dry_run, fail_fast=args.fail_fast, fix=args.fix,
                      progress=TerminalProgress())
    return _finish(report, args.json)


# plan --detailed-exitcode, as terraform plan's: changes pending (docs/exit-codes.md).
EXIT_CHANGES = 2


def plan_command(args: argparse.Namespace) -> int:
    report = run_plan(args.root, args.config, dry_run=True, fix=args.fix, progress=TerminalProgress())
    code = _finish(report, args.json)  # 1: a step would fail, or a refusal is predicted
    if code == 0 and args.detailed_exitcode and report.changed:
        return EXIT_CHANGES
    return code
