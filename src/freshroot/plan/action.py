"""Actions and steps: the one way freshroot describes and makes a change.

A *step* (persist a directory, apply tmpfiles, run an activation snippet...) looks at the
target root and yields only the *actions* needed to bring it to the declared state, in
pyinfra's manner: facts -> compare -> changes. So ``plan`` and ``apply --dry-run`` are the
same code path as ``apply`` minus the apply() calls, and "changed / unchanged" is exact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from freshroot.errors import Location
from freshroot.log import logger

# Where a running step sends each line it prints (the executor captures them into the step's
# result and shows them as they come).
OutputSink = Callable[[str], None]
# Whom a running step tells the pid of a process group it started (the journal keeps it, so a
# resumed run can stop what a killed one left running).
ChildWatcher = Callable[[int], None]


@dataclass(frozen=True)
class Context:
    """What a step needs to know about the run."""

    root_fd: int  # O_PATH fd of the target root; every path is resolved below it
    root: str = "/"  # the root's path, for messages and for tools that need a path
    dry_run: bool = False
    action: str = "activate"  # "activate" or "dry-activate" (FRESHROOT_ACTION)
    fix: bool = False  # apply --fix: also replace what was changed by hand (owner/mode drift, edited files)
    output: OutputSink | None = None  # set by the executor for each step it runs
    child: ChildWatcher | None = None  # set by the executor for each step it runs

    def display(self, path: str) -> str:
        """How a path inside the root is shown: /mnt/etc/x for --root /mnt."""
        return path if self.root in ("", "/") else self.root.rstrip("/") + path


def step_output(ctx: Context) -> OutputSink:
    """Where a running step sends the lines it prints (captured into its StepResult); outside
    the executor, the log."""
    if ctx.output is not None:
        return ctx.output
    return lambda line: logger.info("%s", line)


def step_child(ctx: Context) -> ChildWatcher:
    """Whom a running step tells the pid of the process group it started."""
    if ctx.child is not None:
        return ctx.child
    return lambda pid: None


class Action(ABC):
    """One change. Subclasses are frozen dataclasses holding everything apply() needs."""

    # True for an action that is itself dry-run aware (a snippet that supports dry
    # activation): the executor applies it in a dry run too, and it honours ctx.dry_run.
    applies_in_dry_run: ClassVar[bool] = False

    @abstractmethod
    def describe(self) -> str:
        """One line for people: 'create directory /persist/var/lib/nixos (0755 root:root)'."""

    @abstractmethod
    def apply(self, ctx: Context) -> None:
        """Make the change. Raise OperationError (or OSError) on failure."""

    def record(self) -> Mapping[str, Any] | None:
        """What the journal keeps so ``undo`` can revert this action; None: nothing to undo."""
        return None

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
