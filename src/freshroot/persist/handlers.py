"""Handlers of the persistence subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import Any

from freshroot import log, rootpaths
from freshroot.activation.owners import resolve_accounts
from freshroot.compose import load_checked
from freshroot.errors import EXIT_CANTCREAT, OperationError, UsageError
from freshroot.fs.ops import open_root
from freshroot.hints import command
from freshroot.output import colour_wanted
from freshroot.persist import audit as audit_mod
from freshroot.persist import status as status_mod
from freshroot.persist.facts import State, look_entry
from freshroot.persist.image import hidden_paths
from freshroot.persist.model import Migrate, Persistence
from freshroot.persist.parse import parse
from freshroot.persist.planner import Planner, storage_problem
from freshroot.persist.steps import run_actions
from freshroot.plan.action import Context


def _usage(ctx: Context, path: str) -> dict[str, int]:
    """What the root holds at ``path``: files (all but directories) and bytes."""
    from freshroot.fs.chase import ChaseFlags, chase
    from freshroot.fs.walk import usage

    unreadable: list[str] = []
    with chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.PARENT) as found:
        used = usage(found.fd, found.rest, lambda below, e: unreadable.append(below))
    return {"files": used.files, "bytes": used.size}


def _root(args: argparse.Namespace) -> int:
    try:
        return open_root(args.root)
    except OSError as e:
        raise OperationError(f"--root {args.root}: {e.strerror}") from e


def context(args: argparse.Namespace) -> Context:
    return Context(_root(args), args.root, dry_run=bool(getattr(args, "dry_run", False)))


def persistence(ctx: Context, args: argparse.Namespace) -> Persistence:
    table = load_checked(ctx.root_fd, args.config, root=ctx.root)
    return parse(table, resolve_accounts(ctx.root_fd, table).accounts)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str, priority: int = log.WARNING) -> None:
    log.say(text, priority)


def _print_json(doc: dict[str, Any]) -> None:
    from freshroot.output import print_json

    print_json(doc)


def status(args: argparse.Namespace) -> int:
    from freshroot.plan.journal import last_run, render_last_run

    ctx = context(args)
    report = status_mod.status(persistence(ctx, args), ctx)
    run = last_run(ctx.root_fd)  # the state store: what the last apply did
    hidden = hidden_paths(ctx.root_fd)
    if args.json:
        _print_json({**report.to_json(), "last_apply": run, "hidden_image_content": hidden})
    else:
        colour = colour_wanted(sys.stdout)
        rootpaths.print_head("status of")
        _out(report.render(colour=colour))
        _out(render_last_run(run, colour=colour))
        _hidden(hidden)
    return report.exit_code  # 0 in place, 2 pending/drift, 3 conflict, 4 storage missing


def _hidden(paths: list[str]) -> None:
    """What the image brought into persisted paths and storage hides (persist/image.py)."""
    if paths:
        _out("hidden image content (the image's, under storage; back with the image at each boot):")
        for path in paths:
            _out(f"  {path}")


def undo(args: argparse.Namespace) -> int:
    from freshroot.plan.undo import undo as undo_all

    ctx = context(args)
    if args.config is not None:  # accepted as every command accepts it; checked, not needed
        load_checked(ctx.root_fd, args.config, root=ctx.root)
    report = undo_all(ctx)
    if args.json:
        _print_json(report.to_json())
    else:
        if report.done or report.kept:  # paths follow: the root they are in, once
            rootpaths.print_head("undo on")
        for line in report.done:
            _out(line)
        for line in report.kept:
            _out(f"kept: {line}")
        if not report.done and not report.kept:
            _out("nothing to undo")
    return 0


def audit(args: argparse.Namespace) -> int:
    from freshroot.progress import for_command

    ctx = context(args)
    if args.sizes:  # a walk that stats every file: long on a big root, so it shows its progress
        ctx = replace(ctx, progress=for_command(json=args.json))
    if args.blank:
        from freshroot.root.blank import blank_of

        table = load_checked(ctx.root_fd, args.config, root=ctx.root)
        p = parse(table, resolve_accounts(ctx.root_fd, table).accounts)
        with blank_of(table, ctx.root_fd, ctx.display("/")) as (compare, name):
            report = audit_mod.audit(p, ctx, ignore=tuple(args.ignore), depth=max(args.depth, 1), sizes=args.sizes,
                                     unchanged=compare, baseline=name)
    else:
        report = audit_mod.audit(persistence(ctx, args), ctx, ignore=tuple(args.ignore), depth=max(args.depth, 1),
                                 sizes=args.sizes)
    hidden = hidden_paths(ctx.root_fd)
    if args.json:
        _print_json({**report.to_json(), "hidden_image_content": hidden})
    else:
        rootpaths.print_head("audit of")
        _out(report.render(limit=args.limit, colour=colour_wanted(sys.stdout)))
        _hidden(hidden)
    # Something could not be read: the counts are lower bounds, and a script must know.
    return 0 if report.complete else EXIT_CANTCREAT


def migrate(args: argparse.Namespace) -> int:
    ctx = context(args)
    if ctx.dry_run:
        return _migrate(ctx, args)
    from freshroot.plan.lock import ApplyLock

    # The apply lock: no apply, and no other migrate, works on the root while this one
    # copies and removes (a second one is refused, naming this one).
    with ApplyLock(ctx.root_fd, ctx.root):
        return _migrate(ctx, args)


def _migrate(ctx: Context, args: argparse.Namespace) -> int:
    from freshroot.progress import for_command, size

    p = persistence(ctx, args)
    if not args.json:
        rootpaths.print_head("migrate on")
    ctx = replace(ctx, progress=for_command(json=args.json))
    planner = Planner(ctx)
    how = Migrate.COPY if args.copy else Migrate.MOVE
    sizes: dict[str, dict[str, int]] = {}
    for path in args.paths:
        e = p.find(os.path.normpath(path))
        if e is None:
            raise UsageError(f"{path}: not a declared persisted path (see `{command('status')}`)")
        problem = storage_problem(ctx, next(s for s in p.storages if s.path == e.storage))
        if problem is not None:
            raise OperationError(f"storage {ctx.display(e.storage)} {problem}; nothing migrated")
        source, target = look_entry(ctx.root_fd, e)
        if target.state is not State.DATA:
            _err(f"{ctx.display(e.path)}: nothing to migrate ({target.state.value})")
            continue
        planner.plan_migration(replace(e, migrate=how), source, target, planner.how(e, source, target))
        if ctx.dry_run:
            sizes[e.path] = _usage(ctx, e.path)
    outcome = run_actions(planner.actions + planner.refusals, ctx)
    if args.json:
        _print_json({"dry_run": ctx.dry_run,
                     "actions": [a.to_json() for a in outcome.applied],
                     "failed": [{"action": a.describe(), "error": m} for a, m in outcome.failed],
                     **({"sizes": sizes} if ctx.dry_run else {})})
    else:
        prefix = "would " if ctx.dry_run else ""
        for a in outcome.applied:
            _out(prefix + a.describe())
        for path, used in sizes.items():
            _out(f"{path}: {used['files']:,} files, {size(used['bytes'])} ({used['bytes']:,} bytes) to migrate")
        for _a, message in outcome.failed:
            _err(f"failed: {message}", log.ERR)
    return 0 if outcome.ok else OperationError.exit_code
