"""Actions and steps: the one way freshroot describes and makes a change.

A *step* (persist a directory, apply tmpfiles, run an activation snippet...) looks at the
target root and yields only the *actions* needed to bring it to the declared state, in
pyinfra's manner: facts -> compare -> changes. So ``plan`` and ``apply --dry-run`` are the
same code path as ``apply`` minus the apply() calls, and "changed / unchanged" is exact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from freshroot.errors import Location
from freshroot.plan.context import ChildWatcher, Context, OutputSink, step_child, step_output

if TYPE_CHECKING:
    from freshroot.plan.records import Record

# Context and its callbacks live in plan.context; steps and actions import them from here too.
__all__ = ["Action", "ChildWatcher", "Context", "OutputSink", "Planner", "Step", "step_child", "step_output"]


class Action(ABC):
    """One change. Subclasses are frozen dataclasses holding everything apply() needs."""

    # True for an action that is itself dry-run aware (a snippet that supports dry
    # activation): the executor applies it in a dry run too, and it honours ctx.dry_run.
    applies_in_dry_run: ClassVar[bool] = False
    # True for an action that only says why something declared will not be done (applying it
    # fails): a dry run counts it as a failure to come, so ``plan`` exits 1 on it.
    refusal: ClassVar[bool] = False

    @abstractmethod
    def describe(self) -> str:
        """One line for people: 'create directory /persist/var/lib/nixos (0755 root:root)'."""

    @abstractmethod
    def apply(self, ctx: Context) -> None:
        """Make the change. Raise OperationError (or OSError) on failure."""

    def records(self, ctx: Context) -> Sequence[Record]:
        """The inverse hook: what this action is about to change, as typed records (each with
        its ``revert``), looked at just before apply() and kept in the state store before the
        change is made, for ``undo``. Empty: it changes nothing. The default says that undo
        cannot revert it (and undo then says so)."""
        from freshroot.plan.records import NotReverted

        return (NotReverted(self.describe()),)

    def touches(self) -> tuple[str, ...]:
        """The paths (below the root) this action acts on. In an ``isolated`` step, an action
        that failed skips only the later actions touching one of its paths or a path below
        one; the others are still applied. Empty: it fails alone."""
        return ()

    def to_json(self) -> dict[str, Any]:
        return {"action": type(self).__name__, "description": self.describe()}


Planner = Callable[[Context], Iterable[Action]]


@dataclass(frozen=True)
class Step:
    """A named, ordered unit of the plan. Activation snippets are steps too."""

    name: str
    planner: Planner
    deps: tuple[str, ...] = ()
    description: str = ""
    supports_dry_run: bool = True  # False: in a dry run the step is listed as skipped
    location: Location | None = None  # where the declaration defines it
    # Its actions succeed or fail on their own (persisted entries, /etc files): a failure
    # costs that action and the later ones touching its paths (Action.touches), the rest is
    # applied, and the step is reported failed with every failure named.
    isolated: bool = False
