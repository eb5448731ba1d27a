"""``freshroot undo``: revert every change the state store holds, newest first.

Under the apply lock, so an apply cannot append to the store while undo reads and rewrites it
(and what an apply made while undo waited is never lost). Each record's own ``revert`` checks
what is there first and never removes data (plan/records.py); what it cannot revert, or keeps
because it changed since, is listed in the report. Changes whose revert failed (a mount still
busy) stay in the store for the next undo; when everything is reverted the store, the lock
and the directories freshroot made for them go too, so the root is as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from freshroot.errors import os_error_message
from freshroot.plan.action import Context
from freshroot.plan.journal import Journal, read
from freshroot.plan.lock import ApplyLock
from freshroot.plan.records import Record, UndoReport, from_json, revert_all


def dry_run(ctx: Context, keep: Callable[[str], bool] = lambda step: True) -> UndoReport:
    """What undo would revert, newest first; reads the store without taking the lock."""
    data = read(ctx.root_fd)
    report = UndoReport()
    for change in reversed(data.get("changes", []) if data is not None else []):
        if isinstance(change, dict) and keep(str(change.get("step"))):
            report.done.append(f"would revert: {from_json(change.get('record')).describe()}")
    return report


def undo(ctx: Context, keep: Callable[[str], bool] = lambda step: True, *, wait: bool = False) -> UndoReport:
    """Revert the changes of the steps ``keep`` accepts (all by default); ``ctx.dry_run``: list them."""
    if ctx.dry_run:
        return dry_run(ctx, keep)
    report = UndoReport()
    with ApplyLock(ctx.root_fd, ctx.root, wait=wait) as lock, \
            Journal.open(ctx.root_fd, None, made=lock.made) as store:
        chosen = [(i, r) for i, (step, r) in enumerate(store.changes()) if keep(step)]
        failed: set[int] = set()

        def on_error(record: Record, error: OSError) -> None:
            failed.add(id(record))
            report.kept.append(f"could not revert ({record.describe()}): {os_error_message(error)}")

        revert_all(ctx, [r for _, r in chosen], report, on_error)
        store.drop_changes({i for i, r in chosen if id(r) not in failed})
        if not store.data["changes"]:
            store.remove()
    return report
