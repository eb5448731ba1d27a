"""What the generated services run at boot: ``freshroot persist-prepare`` and
``freshroot persist-files --start|--stop``. Both reuse the persistence planner and actions.

- prepare creates, for every directory entry of every usable storage, the storage directory
  (and its parents) with the declared owner and mode, and the mount point on the root, and
  nothing else: the mount units mount. A storage that is missing or not mounted is named,
  with the paths that will not persist this boot.
- persist-files plans the file entries alone and applies the plan, recording each change in
  the state store (plan/journal.py) as a change of the step ``persist-files`` before making
  it; ``--stop`` reverts exactly those changes, newest first, and forgets them.

Both work under the apply lock, waiting for an apply that holds it rather than failing the boot.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from freshroot import log
from freshroot.errors import EXIT_FAILURE
from freshroot.persist import facts
from freshroot.persist.dircache import DirCache
from freshroot.persist.facts import State
from freshroot.persist.model import Entry, Kind, Persistence, Storage
from freshroot.persist.planner import Planner, declared_parents, plan, storage_problem
from freshroot.persist.steps import run_actions
from freshroot.plan.action import Action, Context
from freshroot.plan.journal import Journal
from freshroot.plan.lock import ApplyLock

FILES_STEP = "persist-files"
EXIT_FAILED = EXIT_FAILURE  # docs/exit-codes.md: a step failed, as apply's persist step does


def say(text: str, priority: int = log.INFO) -> None:
    """One line on stdout (the units send it to the journal): with its priority there
    (freshroot.log), err for a failure or a missing storage, warning for degraded paths."""
    log.say(f"freshroot: {text}", priority, sys.stdout)


def usable(p: Persistence, ctx: Context) -> tuple[list[Storage], bool]:
    """The storages that can be used now, and whether a required one cannot; each problem
    is said in words, naming the storage and what will not persist."""
    ok: list[Storage] = []
    fatal = False
    for s in p.storages:
        problem = storage_problem(ctx, s)
        if problem is None:
            ok.append(s)
            continue
        paths = ", ".join(e.path for e in s.entries) or "(none)"
        then = ("degraded = true: the boot goes on, and what is written to these paths is lost at the next boot"
                if s.degraded else "set degraded = true on it to boot without it")
        say(f"storage {ctx.display(s.path)} {problem}; NOT persisted this boot: {paths}. {then}",
            log.WARNING if s.degraded else log.ERR)
        fatal = fatal or not s.degraded
    return ok, fatal


def _prepare_directory(planner: Planner, e: Entry) -> None:
    source, target = facts.look_entry(planner.ctx.root_fd, e, planner.dirs)
    if source.state is State.MISSING and planner.storage_parents(e):
        planner.mkdir(e.source, planner.source_owner(e, target), "storage directory")
    if target.state is State.MISSING and planner.root_parents(e):
        owner = planner.planned.get(e.source) or source.perms() or planner.source_owner(e, target)
        planner.mkdir(e.path, owner, "mount point")


def prepare_actions(storages: list[Storage], ctx: Context) -> list[Action]:
    planner = Planner(ctx, dirs=DirCache(ctx.root_fd))
    planner.parents = declared_parents([e for s in storages for e in s.entries])  # as apply's plan
    for e in sorted((e for s in storages for e in s.entries), key=lambda e: e.path):
        if e.kind is Kind.DIRECTORY:
            _prepare_directory(planner, e)
        else:
            planner.storage_parents(e)  # the file itself is the files service's
    return planner.actions + planner.refusals


def prepare(p: Persistence, ctx: Context) -> int:
    storages, fatal = usable(p, ctx)
    if ctx.dry_run:
        outcome = run_actions(prepare_actions(storages, ctx), ctx)
    else:
        with ApplyLock(ctx.root_fd, ctx.root, wait=True) as lock, \
                Journal.open(ctx.root_fd, None, made=lock.made) as store:
            outcome = run_actions(prepare_actions(storages, ctx), ctx, store=store, step="persist-prepare")
    prefix = "would " if ctx.dry_run else ""
    for action in outcome.applied:
        say(prefix + action.describe())
    for _action, message in outcome.failed:
        say(f"failed: {message}", log.ERR)
    return EXIT_FAILED if fatal or not outcome.ok else 0


def files_start(p: Persistence, ctx: Context) -> int:
    storages, fatal = usable(p, ctx)
    only_files = Persistence(tuple(replace(s, entries=tuple(e for e in s.entries if e.kind is Kind.FILE))
                                   for s in storages))
    actions = plan(only_files, ctx)
    if ctx.dry_run:
        for a in actions:
            say("would " + a.describe())
        return 0
    with ApplyLock(ctx.root_fd, ctx.root, wait=True) as lock, \
            Journal.open(ctx.root_fd, None, made=lock.made) as store:
        outcome = run_actions(actions, ctx, store=store, step=FILES_STEP)
    for action in outcome.applied:
        say(action.describe())
    for _action, message in outcome.failed:
        say(f"failed: {message}", log.ERR)
    return EXIT_FAILED if fatal or not outcome.ok else 0


def files_stop(ctx: Context) -> int:
    from freshroot.plan.undo import undo

    report = undo(ctx, lambda step: step == FILES_STEP, wait=True)
    for line in report.done:
        say(line)
    for line in report.kept:
        say(f"kept: {line}")
    return 0
