"""``freshroot status``: each declared entry against what is there, and owner/mode drift."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import Any

from freshroot.errors import FreshrootError
from freshroot.output import paint, status_word
from freshroot.persist import facts, useropts
from freshroot.persist.actions import Refuse
from freshroot.persist.facts import State
from freshroot.persist.model import Entry, Persistence
from freshroot.persist.planner import Planner, storage_problem
from freshroot.plan.action import Context

# freshroot status's exit codes (docs/exit-codes.md), worst first.
EXIT_STORAGE_MISSING = 4
EXIT_CONFLICT = 3
EXIT_PENDING = 2


@dataclass(frozen=True)
class EntryStatus:
    """One persisted path in `freshroot status`: what the root and storage hold, and what apply would do."""
    entry: Entry
    state: str  # ok | pending | conflict | waiting | skipped
    root: str  # what is on the root (facts.State)
    storage: str  # what is in storage
    todo: tuple[str, ...] = ()  # what apply would do, or why it refuses
    drift: tuple[str, ...] = ()
    user_options: tuple[str, ...] = ()  # what libmount's utab gives the mount (x-gvfs-hide...)

    def to_json(self) -> dict[str, Any]:
        e = self.entry
        return {"path": e.path, "kind": e.kind.value, "storage": e.storage, "source": e.source,
                "how": e.how.value, "state": self.state, "root": self.root, "in_storage": self.storage,
                "todo": list(self.todo), "drift": list(self.drift), "user_options": list(self.user_options),
                "declared_at": str(e.location) if e.location else None}


@dataclass
class StatusReport:
    """What `freshroot status` reports."""
    entries: list[EntryStatus] = field(default_factory=list)
    storages: dict[str, str | None] = field(default_factory=dict)  # path -> problem

    @property
    def in_sync(self) -> bool:
        return all(s.state == "ok" and not s.drift for s in self.entries)

    @property
    def exit_code(self) -> int:
        """docs/exit-codes.md: the worst finding. 0 in place (or waiting for a program to
        write it), 2 changes pending or drift, 3 a conflict (apply would refuse), 4 a storage
        missing or not mounted."""
        if any(problem is not None for problem in self.storages.values()):
            return EXIT_STORAGE_MISSING
        if any(s.state == "conflict" for s in self.entries):
            return EXIT_CONFLICT
        if any(s.state == "pending" or s.drift for s in self.entries):
            return EXIT_PENDING
        return 0

    def to_json(self) -> dict[str, Any]:
        return {"in_sync": self.in_sync,
                "storages": [{"path": p, "problem": v} for p, v in self.storages.items()],
                "entries": [s.to_json() for s in self.entries]}

    def render(self, *, colour: bool = False) -> str:
        """The text of ``status``; ``colour``: states in colour (a terminal)."""
        lines = []
        for path, problem in self.storages.items():
            lines.append(f"{paint(path, 'bold', colour)}: {paint(problem, 'red+bold', colour)}" if problem
                         else f"{paint(path, 'bold', colour)}:")
            for s in (s for s in self.entries if s.entry.storage == path):
                kind = "dir " if s.entry.kind.value == "directory" else "file"
                shown = f" ({','.join(s.user_options)})" if s.user_options else ""
                lines.append(f"  {status_word(s.state, colour, 9)}{kind} {s.entry.path}{shown}")
                lines.extend(f"             {t}" for t in s.todo)
                lines.extend(f"             {paint('drift:', 'yellow', colour)} {d} (apply --fix)" for d in s.drift)
        counts: dict[str, int] = {}
        for s in self.entries:
            counts[s.state] = counts.get(s.state, 0) + 1
        lines.append(", ".join(f"{n} {status_word(state, colour)}" for state, n in sorted(counts.items()))
                     or "nothing declared")
        return "\n".join(lines)


def drift(e: Entry, have: tuple[int, int, int] | None) -> tuple[str, ...]:
    if have is None:
        return ()
    uid, gid, mode = have
    out = []
    if e.perms.mode is not None and e.perms.mode != mode:
        out.append(f"mode {mode:04o}, declared {e.perms.mode:04o}")
    if e.perms.uid is not None and e.perms.uid != uid:
        out.append(f"owner {uid}, declared {e.perms.uid}")
    if e.perms.gid is not None and e.perms.gid != gid:
        out.append(f"group {gid}, declared {e.perms.gid}")
    return tuple(out)


def status(p: Persistence, ctx: Context) -> StatusReport:
    report = StatusReport()
    plain = Context(ctx.root_fd, ctx.root, dry_run=True)
    for s in p.storages:
        problem = storage_problem(ctx, s)
        report.storages[s.path] = problem
        for e in s.entries:
            if problem is not None:
                report.entries.append(EntryStatus(e, "skipped", "-", "unavailable"))
                continue
            planner = Planner(plain)
            planner.safe_entry(e)
            try:
                source, target = facts.look_entry(ctx.root_fd, e)
            except (OSError, FreshrootError):
                source = target = facts.Fact(State.BLOCKED)
            refusals = [a.reason for a in planner.refusals if isinstance(a, Refuse)]
            todo = [a.describe() for a in planner.actions]
            if refusals:
                state = "conflict"
            elif todo:
                state = "pending"
            elif target.state in (State.OURS_MOUNT, State.OURS_LINK):
                state = "ok"
            else:
                state = "waiting"  # create = false and nothing to persist yet
            have = source.perms() if source.st is not None and not stat.S_ISLNK(source.st.st_mode) else None
            user = useropts.recorded(ctx, e.path) if target.state is State.OURS_MOUNT else ()
            report.entries.append(EntryStatus(e, state, target.state.value, source.state.value,
                                              tuple(refusals or todo), drift(e, have), user))
    return report
