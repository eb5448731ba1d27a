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
from freshroot.errors import ConfigError, FreshrootError, OperationError
from freshroot.log import debug_enabled, logger
from freshroot.persist.model import Persistence
from freshroot.persist.parse import Skip, parse
from freshroot.persist.planner import plan
from freshroot.plan.action import Action, Context, Step
from freshroot.plan.journal import Journal, Recorder
from freshroot.plan.records import Record

STEP_NAME = "persist"


def load(declaration: Table, root_fd: int, skip: Skip | None = None) -> Persistence:
    # The declaration's own users count: `plan` before the users step has created them.
    return parse(declaration, resolve_accounts(root_fd, declaration).accounts, skip=skip)


@dataclass(frozen=True)
class RefuseEntries(Action):
    """At boot, the entries the declaration gets wrong: every other entry is applied first,
    then this fails the step, so the journal (priority err) and ``systemctl --failed`` name
    them, and one bad entry never leaves /var/log unpersisted. ``apply`` refuses the whole
    declaration before any step instead."""

    errors: tuple[str, ...]

    def describe(self) -> str:
        entries = "entry" if len(self.errors) == 1 else "entries"
        return f"refuse {len(self.errors)} persisted {entries} the declaration gets wrong"

    def apply(self, ctx: Context) -> None:
        raise OperationError("; ".join(self.errors))

    def records(self, ctx: Context) -> Sequence[Record]:
        return ()  # changes nothing


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
        skipped: list[ConfigError] = []
        p = load(declaration, ctx.root_fd, skip=skipped.append if ctx.boot else None)
        actions = list(plan(without_identity(p), ctx))
        if skipped:
            actions.append(RefuseEntries(tuple(str(e) for e in skipped)))
        return actions

    # isolated: one entry that fails (a file that cannot be bound safely) costs that entry,
    # not /var/log and every other persisted path.
    return [Step(STEP_NAME, planner, description="bind or link persisted directories and files from storage",
                 location=declaration.location("persist"), isolated=True)]


@dataclass
class Outcome:
    """What a run of persistence actions did."""

    applied: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def run_actions(actions: Sequence[Action], ctx: Context, *, keep_going: bool = True,
                store: Recorder | None = None, step: str = STEP_NAME) -> Outcome:
    """Apply ``actions`` in order (the executor's job in ``apply``; used by the persist
    commands, the boot services and tests). Each action's changes go to ``store`` (the caller's,
    under the apply lock; by default the root's state store) before the action is applied, as
    the changes of ``step``. A failed action does not stop the ones after it unless
    ``keep_going`` is false."""
    out = Outcome()
    own: Journal | None = None
    debug = debug_enabled()  # --debug: each action, as the executor logs a step's
    try:
        for action in actions:
            if debug:
                logger.debug("  %s %s", "plan:" if ctx.dry_run else "apply:", action.describe().replace("\n", "\n    "))
            if ctx.dry_run:
                out.applied.append(action)
                continue
            try:
                for record in action.records(ctx):
                    if store is None:  # opened on the first record: a refusal alone writes nothing
                        store = own = Journal.open(ctx.root_fd, None)
                    store.change(step, record)
                action.apply(ctx)
            except (FreshrootError, OSError) as e:
                message = str(e) if isinstance(e, FreshrootError) else OperationError(
                    f"{action.describe()}: {e.strerror or e}").message
                out.failed.append((action, message))
                logger.debug("  failed: %s", message)
                if not keep_going:
                    break
            else:
                out.applied.append(action)
    finally:
        if own is not None:
            own.close()
        for cache in {id(c): c for a in actions if (c := getattr(a, "dirs", None)) is not None}.values():
            cache.close()
    return out


def apply_persistence(p: Persistence, ctx: Context) -> Outcome:
    return run_actions(plan(p, ctx), ctx)
