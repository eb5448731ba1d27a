"""The Context a step runs with, and the callbacks the executor gives it.

Its own module so that what the context is passed to (records' reverts, actions) can name it
without importing the actions module (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from freshroot.log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from freshroot.progress import Progress

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
    boot: bool = False  # the boot activation (apply --boot): the root is as its image left it this boot
    output: OutputSink | None = None  # set by the executor for each step it runs
    child: ChildWatcher | None = None  # set by the executor for each step it runs
    progress: Progress | None = None  # long work shows its progress here (migrate), when a command asks

    def display(self, path: str) -> str:
        """How a path inside the root is shown: as the root sees it (/etc/x for --root /mnt),
        the one path style of every message; the root itself is named once, by the report's
        head or the error's note (freshroot.cli.report)."""
        return path


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
