"""Persistence as steps of the one plan, and a small runner for the persist commands.

``build_steps(declaration)`` is what ``freshroot apply`` (the activation executor) runs.
Accounts are read from the target root when the step plans, not when the declaration is
parsed, so users created by an earlier step of the same run are known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from freshroot.activation.owners import resolve_accounts
from freshroot.config.table import Table
from freshroot.errors import FreshrootError, OperationError
from freshroot.persist.model import Persistence
from freshroot.persist.parse import parse
from freshroot.persist.planner import plan
from freshroot.plan.action import Action, Context, Step

STEP_NAME = "persist"


def load(declaration: Table, root_fd: int) -> Persistence:
    # The declaration's own users count: `plan` before the users step has created them.
    return parse(declaration, resolve_accounts(root_fd, declaration).accounts)


def without_identity(p: Persistence) -> Persistence:
    """/etc/machine-id is the machine-id step's (activation/identity.py): written, not bound."""
    from freshroot.activation.identity import HANDLED

    return Persistence(tuple(replace(s, entries=tuple(e for e in s.entries if e.path not in HANDLED))
                             for s in p.storages))


def build_steps(declaration: Table) -> list[Step]:
    """The persistence step(s) of the plan. Nothing if the declaration has no [persist]."""
    if "persist" not in declaration:
        return []

    def planner(ctx: Context) -> Iterable[Action]:
        return plan(without_identity(load(declaration, ctx.root_fd)), ctx)

    return [Step(STEP_NAME, planner, description="bind or link persisted directories and files from storage",
                 location=declaration.location("persist"))]


@dataclass
class Outcome:
    """What a run of persistence actions did."""

    applied: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def run_actions(actions: Sequence[Action], ctx: Context, *, keep_going: bool = True) -> Outcome:
    """Apply ``actions`` in order (the executor's job in ``apply``; used by the persist
    commands and tests until and unless they go through it). A failed action does not
    stop the ones after it unless ``keep_going`` is false."""
    out = Outcome()
    try:
        for action in actions:
            if ctx.dry_run:
                out.applied.append(action)
                continue
            try:
                action.apply(ctx)
            except (FreshrootError, OSError) as e:
                message = str(e) if isinstance(e, FreshrootError) else OperationError(
                    f"{action.describe()}: {e.strerror or e}").message
                out.failed.append((action, message))
                if not keep_going:
                    break
            else:
                out.applied.append(action)
    finally:
        for cache in {id(c): c for a in actions if (c := getattr(a, "dirs", None)) is not None}.values():
            cache.close()
    return out


def apply_persistence(p: Persistence, ctx: Context) -> Outcome:
    return run_actions(plan(p, ctx), ctx)
