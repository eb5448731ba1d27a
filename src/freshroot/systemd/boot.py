"""What the generated services run at boot: ``freshroot persist-prepare`` and
``freshroot persist-files --start|--stop``. Both reuse the persistence planner and actions.

- prepare creates, for every directory entry of every usable storage, the storage directory
  (and its parents) with the declared owner and mode, and the mount point on the root, and
  nothing else: the mount units mount. A storage that is missing or not mounted is named,
  with the paths that will not persist this boot.
- persist-files plans the file entries alone and applies the plan, journalling each change
  in /run/freshroot/persist-files.jsonl before making it; ``--stop`` reverts exactly those
  records, newest first, and removes the record.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from typing import Any

from freshroot.errors import FreshrootError
from freshroot.fs import ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist import facts
from freshroot.persist.dircache import DirCache
from freshroot.persist.facts import State
from freshroot.persist.model import Entry, Kind, Persistence, Storage
from freshroot.persist.planner import Planner, plan, storage_problem
from freshroot.persist.steps import run_actions
from freshroot.persist.undo import UndoReport, revert
from freshroot.plan.action import Action, Context

RECORD_DIR = "/run/freshroot"
RECORD_NAME = "persist-files.jsonl"
EXIT_FAILED = 73


def say(text: str) -> None:
    sys.stdout.write(f"freshroot: {text}\n")
    sys.stdout.flush()


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
        say(f"storage {ctx.display(s.path)} {problem}; NOT persisted this boot: {paths}. {then}")
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
    for e in sorted((e for s in storages for e in s.entries), key=lambda e: e.path):
        if e.kind is Kind.DIRECTORY:
            _prepare_directory(planner, e)
        else:
            planner.storage_parents(e)  # the file itself is the files service's
    return planner.actions + planner.refusals


def prepare(p: Persistence, ctx: Context) -> int:
    storages, fatal = usable(p, ctx)
    outcome = run_actions(prepare_actions(storages, ctx), ctx)
    prefix = "would " if ctx.dry_run else ""
    for action in outcome.applied:
        say(prefix + action.describe())
    for _action, message in outcome.failed:
        say(f"failed: {message}")
    return EXIT_FAILED if fatal or not outcome.ok else 0


def _record_dir(ctx: Context) -> int:
    with ops.mkdir_parents(ctx.root_fd, RECORD_DIR, 0o755) as d:
        return os.dup(d.fd)


def _append(fd: int, record: object) -> None:
    os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())


def files_start(p: Persistence, ctx: Context) -> int:
    storages, fatal = usable(p, ctx)
    only_files = Persistence(tuple(replace(s, entries=tuple(e for e in s.entries if e.kind is Kind.FILE))
                                   for s in storages))
    actions = plan(only_files, ctx)
    failed = 0
    if ctx.dry_run:
        for a in actions:
            say("would " + a.describe())
        return 0
    dir_fd = _record_dir(ctx)
    try:
        fd = ops.open_at(dir_fd, RECORD_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    finally:
        os.close(dir_fd)
    try:
        for action in actions:
            record = action.record()
            if record is not None:
                _append(fd, record)  # before acting: stop tolerates records of what never happened
            try:
                action.apply(ctx)
            except (FreshrootError, OSError) as e:
                message = str(e) if isinstance(e, FreshrootError) else f"{action.describe()}: {e.strerror or e}"
                say(f"failed: {message}")
                failed += 1
            else:
                say(action.describe())
    finally:
        os.close(fd)
        for cache in {id(c): c for a in actions if (c := getattr(a, "dirs", None)) is not None}.values():
            cache.close()
    return EXIT_FAILED if fatal or failed else 0


def read_records(ctx: Context) -> list[dict[str, Any]]:
    try:
        with chase(f"{RECORD_DIR}/{RECORD_NAME}", root_fd=ctx.root_fd,
                   flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
            fd = ops.reopen(found.fd, os.O_RDONLY)
    except FileNotFoundError:
        return []
    try:
        data = ops.read_fd(fd, 1 << 26)
    finally:
        os.close(fd)
    out = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def files_stop(ctx: Context) -> int:
    records = read_records(ctx)
    report = UndoReport()
    if ctx.dry_run:
        for r in reversed(records):
            say(f"would revert: {r.get('op')} {r.get('path', r.get('target', ''))}")
        return 0
    revert(ctx, records, report)
    for line in report.done:
        say(line)
    for line in report.kept:
        say(f"kept: {line}")
    try:
        with chase(RECORD_DIR, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as d:
            ops.unlink_at(d.fd, RECORD_NAME)
    except FileNotFoundError:
        pass
    return 0
