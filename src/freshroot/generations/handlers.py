"""The handlers of ``freshroot generations``, ``rollback`` and ``confirm``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import replace
from typing import Any

from freshroot import rootpaths
from freshroot.digest import sha256
from freshroot.errors import EXIT_FAILURE, ConfigError, OperationError, UsageError
from freshroot.fs import ops
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.generations import timer
from freshroot.generations.store import Generation, Store, directory_for, storage_of
from freshroot.hints import command
from freshroot.output import colour_wanted, paint, print_json, status_word
from freshroot.plan.lock import ApplyLock


def locate(root_fd: int, root: str, args: argparse.Namespace) -> str:
    """The generations directory: ``--generations``, or the one the declaration implies. The
    declaration is read leniently (rollback is for when it is broken): unreadable, it is the
    fallback directory."""
    if getattr(args, "generations", None):
        path: str = args.generations
        if not path.startswith("/"):
            raise UsageError(f"--generations {path}: must be an absolute path below the root")
        return path
    from freshroot.config.load import load_declaration

    try:
        table = load_declaration(root_fd, getattr(args, "config", None), root=root)
        return directory_for(storage_of(table))
    except ConfigError:
        return directory_for(None)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def generations(args: argparse.Namespace) -> int:
    root_fd = ops.open_root(args.root)
    try:
        path = locate(root_fd, args.root, args)
        with Store(root_fd, args.root, path) as store:
            gens, current = store.all(), store.current()
    finally:
        os.close(root_fd)
    if args.json:
        print_json({"path": path, "current": current,
                    "generations": [{**g.to_json(), "current": g.number == current} for g in gens]})
        return 0
    rootpaths.print_head("generations of")  # with --root: the root whose generations these are
    if not gens:
        sys.stdout.write(f"no generations in {path} (apply keeps one)\n")
        return 0
    colour = colour_wanted(sys.stdout)
    for g in gens:
        mark = paint("*", "green+bold", colour) if g.number == current else " "
        number = paint(f"{g.number:>4}", "bold", colour and g.number == current)
        confirm = f"  [{status_word(g.confirm_state, colour)}]" if g.confirm_state else ""
        failed = "  " + paint("(apply failed)", "red", colour) if not g.ok else ""
        origin = "" if g.origin == "apply" else f"  ({g.origin})"
        sys.stdout.write(f"{mark} {number}  {_when(g.time)}  {g.digest[:12]}  freshroot {g.version}"
                         f"{confirm}{failed}{origin}\n")
    return 0


def _restore_files(root_fd: int, target: Generation, current: Generation | None, contents: list[bytes],
                   notes: list[str]) -> None:
    """Put the target's declaration files that were read below the root back in place (so the
    next boot reads the same declaration), and remove those the current generation read there
    that the target did not have, unless they changed since (then they stay, said so)."""
    keep = {f.path for f in target.files if f.in_root}
    for f, raw in zip(target.files, contents, strict=True):
        if not f.in_root:
            continue
        parent, name = f.path.rsplit("/", 1)
        with ops.mkdir_parents(root_fd, parent or "/", 0o755) as d:
            replace_at(d.fd, name, raw, mode=0o644)
    for f in current.files if current else ():
        if not f.in_root or f.path in keep:
            continue
        parent, name = f.path.rsplit("/", 1)
        try:
            with chase(f.path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
                fd = ops.reopen(found.fd, os.O_RDONLY | os.O_NONBLOCK)
                try:
                    same = sha256(ops.read_fd(fd)).hexdigest() == f.sha256
                finally:
                    os.close(fd)
            if not same:
                notes.append(f"{f.path}: changed since generation {current.number if current else '?'}; left in place")
                continue
            with chase(parent or "/", root_fd=root_fd, flags=ChaseFlags.SAFE) as d:
                os.unlink(name, dir_fd=d.fd)
        except (FileNotFoundError, NotADirectoryError):
            continue


def rollback(args: argparse.Namespace) -> int:
    from freshroot.plan.handlers import _finish, run_plan
    from freshroot.plan.progress import TerminalProgress

    if args.delay:
        time.sleep(args.delay)  # the confirm timer without systemd (freshroot.generations.timer)
    root_fd = ops.open_root(args.root)
    notes: list[str] = []
    try:
        path = locate(root_fd, args.root, args)
        # The timer waits for an apply in progress; a person gets "busy" at once.
        with ApplyLock(root_fd, args.root, wait=args.if_unconfirmed is not None), \
                Store(root_fd, args.root, path) as store:
            current_number = store.current()
            current = store.get(current_number) if current_number is not None else None
            if args.if_unconfirmed is not None:
                pending = store.get(args.if_unconfirmed)
                if pending is None or pending.confirm_state != "pending":
                    sys.stdout.write(f"generation {args.if_unconfirmed} is not waiting for a confirm; nothing to do\n")
                    return 0
                assert pending.confirm is not None
                if current_number != pending.number:
                    store.update(replace(pending, confirm={**pending.confirm, "state": "superseded"}))
                    sys.stdout.write(f"generation {pending.number} is no longer current; nothing to do\n")
                    return 0
                target = store.get(int(pending.confirm.get("previous", -1)))
            elif args.to is not None:
                target = store.get(args.to)
                if target is None:
                    raise UsageError(f"no generation {args.to} in {path}",
                                     hint=f"`{command('generations')}` lists them")
            else:
                target = store.previous()
            if target is None:
                before = f"before {current_number}" if current_number is not None else "yet"
                raise OperationError(f"no generation {before} in {path}: nothing to roll back to")
            contents = store.contents(target)
            _restore_files(root_fd, target, current, contents, notes)
            report = run_plan(args.root, store.files_on_host(target), dry_run=False, progress=TerminalProgress(),
                              held=True)
            if current is not None and current.confirm_state == "pending" and current.number != target.number:
                assert current.confirm is not None
                if args.if_unconfirmed is None:
                    timer.disarm(current.confirm.get("timer"))
                store.update(replace(current, confirm={**current.confirm, "state": "rolled-back",
                                                       "rolled_back_at": time.time(), "to": target.number}))
            store.set_current(target.number)
    finally:
        os.close(root_fd)
    summary = {"from": current_number, "to": target.number, "path": path, "notes": notes}
    line = f"rolled back from generation {current_number} to {target.number}"
    return _finish(report, args.json, {"rollback": summary}, "\n".join([line, *notes]))


def confirm(args: argparse.Namespace) -> int:
    root_fd = ops.open_root(args.root)
    result: dict[str, Any]
    try:
        path = locate(root_fd, args.root, args)
        # Waits for a rollback the timer started: then it answers "too late", not "busy".
        with ApplyLock(root_fd, args.root, wait=True), Store(root_fd, args.root, path) as store:
            number = store.current()
            current = store.get(number) if number is not None else None
            late = [g for g in store.all() if g.confirm_state == "rolled-back" and g.number > (number or 0)]
            if current is not None and current.confirm_state == "pending":
                assert current.confirm is not None
                timer.disarm(current.confirm.get("timer"))
                store.update(replace(current, confirm={**current.confirm, "state": "confirmed",
                                                       "confirmed_at": time.time()}))
                result = {"generation": number, "state": "confirmed"}
            elif late:
                result = {"generation": number, "state": "rolled-back", "rolled_back": late[-1].number}
            else:
                result = {"generation": number, "state": current.confirm_state if current else None}
    finally:
        os.close(root_fd)
    if args.json:
        print_json(result)
    elif result["state"] == "confirmed":
        sys.stdout.write(f"generation {number} confirmed\n")
    elif result["state"] == "rolled-back":
        sys.stdout.write(f"too late: generation {result['rolled_back']} was rolled back to {number}\n")
    else:
        sys.stdout.write(f"nothing to confirm (generation {number})\n" if number is not None
                         else "nothing to confirm (no generation yet)\n")
    with contextlib.suppress(KeyError):
        if result["state"] == "rolled-back":
            return EXIT_FAILURE
    return 0
