"""The executor: orders steps, runs them (or only plans them), and reports what happened.

One executor for everything freshroot does to a root: persistence, tmpfiles, /etc, users and
the declaration's own activation snippets are all :class:`~freshroot.plan.action.Step` s.

- :func:`order` sorts steps by their ``deps`` with graphlib, ties broken by name, so a plan
  is the same on every run; an unknown dependency or a cycle is a ConfigError naming the
  cycle (``a => b => a``) and where the step is declared.
- :func:`execute` asks each step's planner for actions. In a dry run the actions are listed,
  not applied (an action whose ``applies_in_dry_run`` is set, such as a snippet that supports
  dry activation, runs, and honours ``ctx.dry_run`` itself); a step that does not support dry
  runs is listed as skipped and its planner is never called. As NixOS does, a failed step
  does not stop the others (unless ``fail_fast``), but everything that depends on it is
  skipped with the reason, and the report is not ok.
"""

from __future__ import annotations

import dataclasses
import graphlib
import heapq
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from freshroot.errors import ConfigError, FreshrootError, os_error_message
from freshroot.log import debug_enabled, logger
from freshroot.plan.action import Action, Context, Step
from freshroot.plan.result import Report, Status, StepResult

if TYPE_CHECKING:
    from freshroot.plan.journal import Journal

class Progress(Protocol):
    """Told about each step as it starts and ends, and about each line a step prints."""

    def start(self, step: Step, index: int, total: int) -> None: ...
    def output(self, step: Step, line: str) -> None: ...
    def finish(self, result: StepResult) -> None: ...


# --- ordering ---------------------------------------------------------------------------


def order(steps: Sequence[Step]) -> list[Step]:
    """The steps sorted so each comes after its deps; among steps ready together, by name."""
    by_name: dict[str, Step] = {}
    for step in steps:
        if step.name in by_name:
            raise ConfigError(f"step {step.name!r} is defined twice", location=step.location)
        by_name[step.name] = step
    for step in steps:
        for dep in step.deps:
            if dep not in by_name:
                from difflib import get_close_matches  # only for a mistake: not every apply and boot

                close = get_close_matches(dep, list(by_name), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known steps: {', '.join(sorted(by_name))}"
                raise ConfigError(
                    f"{step.name!r} depends on {dep!r}, which is not defined", location=step.location, hint=hint
                )
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for step in steps:
        sorter.add(step.name, *step.deps)
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        # graphlib lists each node before the one that depends on it; we read "a => b" as
        # "a depends on b", the way people write dependency chains.
        cycle = list(reversed(e.args[1]))
        first = by_name[cycle[0]]
        raise ConfigError(
            f"dependency cycle: {' => '.join(cycle)} (each depends on the next)",
            location=first.location,
            hint="remove one of these deps",
        ) from None
    ready: list[str] = []
    out: list[Step] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, name)
        name = heapq.heappop(ready)
        out.append(by_name[name])
        sorter.done(name)
    return out


# --- execution --------------------------------------------------------------------------


def _failure_text(error: BaseException) -> str:
    if isinstance(error, FreshrootError):
        return str(error)
    if isinstance(error, OSError):
        return os_error_message(error)
    return f"internal error: {type(error).__name__}: {error}"


@dataclass
class _Running:
    """What a step collects while it runs."""

    step: Step
    progress: Progress | None
    output: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    def emit(self, line: str) -> None:
        self.output.append(line)
        if self.progress is not None:
            self.progress.output(self.step, line)


def _run_step(step: Step, ctx: Context, run: _Running, journal: Journal | None) -> StepResult:
    started = time.monotonic()
    location = str(step.location) if step.location else None
    base = StepResult(step.name, Status.UNCHANGED, step.description, location=location)
    child = (lambda pid: journal.child(step.name, pid)) if journal is not None else (lambda pid: None)
    step_ctx = dataclasses.replace(ctx, output=run.emit, child=child)
    failures: list[str] = []  # an isolated step's failed actions, each named
    try:
        actions: list[Action] = list(step.planner(step_ctx))
        debug = debug_enabled()
        if debug:
            logger.debug("step %s: %d action(s) planned", step.name, len(actions))
        broken: list[str] = []  # paths of the failed actions (isolated steps)
        for action in actions:
            text = action.describe()
            if debug:
                logger.debug("  %s %s", "plan:" if ctx.dry_run and not action.applies_in_dry_run else "apply:",
                             text.replace("\n", "\n    "))
            if ctx.dry_run and not action.applies_in_dry_run:
                if action.refusal:  # the apply would fail here: the plan says so
                    failures.append(text)
                    continue
                run.applied.append(text)
                continue
            if step.isolated:
                blocker = next((b for b in broken for t in action.touches() if _at_or_below(t, b)), None)
                if blocker is not None:
                    failures.append(f"{text}: not done, {blocker} failed")
                    continue
                try:
                    _apply(action, step_ctx, step.name, journal)
                except Exception as e:  # noqa: BLE001 - this action's failure, not the step's
                    message = _failure_text(e)  # named by its path, or by what it was doing
                    failures.append(message if any(p in message for p in action.touches()) else f"{text}: {message}")
                    logger.debug("  failed: %s", failures[-1])
                    broken += action.touches()
                    continue
            else:
                _apply(action, step_ctx, step.name, journal)
            run.applied.append(text)
        if failures:
            return dataclasses.replace(
                base, status=Status.FAILED, actions=tuple(run.applied), error="\n".join(failures),
                output=tuple(run.output), duration=time.monotonic() - started, partial=True,
            )
    except Exception as e:  # noqa: BLE001 - keep-going: any failure of one step is that step's failure
        if debug_enabled():
            logger.debug("step %s failed", step.name, exc_info=e)
        return dataclasses.replace(
            base, status=Status.FAILED, actions=tuple(run.applied), error=_failure_text(e),
            output=tuple(run.output), duration=time.monotonic() - started,
        )
    return dataclasses.replace(
        base, status=Status.CHANGED if actions else Status.UNCHANGED, actions=tuple(run.applied),
        output=tuple(run.output), duration=time.monotonic() - started,
    )


def _apply(action: Action, ctx: Context, step: str, journal: Journal | None) -> None:
    if journal is not None:  # before the change: a crash leaves its record
        for record in action.records(ctx):
            journal.change(step, record)
    action.apply(ctx)


def _at_or_below(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _skip(step: Step, reason: str) -> StepResult:
    return StepResult(step.name, Status.SKIPPED, step.description, reason=reason,
                      location=str(step.location) if step.location else None)


def execute(
    steps: Iterable[Step],
    ctx: Context,
    *,
    fail_fast: bool = False,
    journal: Journal | None = None,
    progress: Progress | None = None,
) -> Report:
    """Run (or, with ``ctx.dry_run``, plan) ``steps`` in dependency order.

    Never raises for a failed step: the Report says what failed. A bad plan (a cycle, an
    unknown dependency) raises ConfigError before anything runs.
    """
    ordered = order(list(steps))
    results: dict[str, StepResult] = {}
    blocked: set[str] = set()  # failed, or skipped because something below them failed
    stopped: str | None = None  # with fail_fast: the step that failed first
    below: dict[str, set[str]] = {}  # each step's transitive dependencies
    for step in ordered:
        below[step.name] = set(step.deps).union(*(below[d] for d in step.deps))
    for index, step in enumerate(ordered):
        if progress is not None:
            progress.start(step, index, len(ordered))
        logger.debug("step %s (%d/%d)%s", step.name, index + 1, len(ordered),
                     f", after {', '.join(step.deps)}" if step.deps else "")
        result = _decide(
            step, ctx, results=results, blocked=blocked, stopped=stopped, journal=journal, progress=progress
        )
        if ctx.dry_run and result.status is Status.FAILED:
            result = _unplannable(result, below[step.name], results)
        results[step.name] = result
        if journal is not None and not result.resumed:
            journal.step_done(result)
        if progress is not None:
            progress.finish(result)
        logger.debug("step %s: %s in %.3f s%s", step.name, result.status, result.duration,
                     f" ({result.reason or result.error})" if result.reason or result.error else "")
        if result.status is Status.FAILED:
            blocked.add(step.name)
            if fail_fast and stopped is None:
                stopped = step.name
    report = Report(tuple(results.values()), dry_run=ctx.dry_run, root=ctx.root,
                    run_id=journal.run_id if journal is not None else None)
    if journal is not None:
        journal.finish(report.ok)
    return report


def _unplannable(result: StepResult, deps: set[str], results: Mapping[str, StepResult]) -> StepResult:
    """In a dry run, a step that fails to plan after a dependency that *would* change (a user
    that does not exist yet) cannot be planned honestly: it is skipped, saying why, not failed."""
    pending = sorted(d for d in deps if results[d].status is Status.CHANGED)
    if not pending or result.partial:  # partial: it was planned; what it refuses, it refuses
        return result
    names = ", ".join(repr(d) for d in pending)
    return dataclasses.replace(
        result, status=Status.SKIPPED, error=None,
        reason=f"cannot be planned before the changes of {names} are made ({result.error})",
    )


def _decide(
    step: Step,
    ctx: Context,
    *,
    results: Mapping[str, StepResult],
    blocked: set[str],
    stopped: str | None,
    journal: Journal | None,
    progress: Progress | None,
) -> StepResult:
    if stopped is not None:
        blocked.add(step.name)
        return _skip(step, f"not run: {stopped!r} failed and --fail-fast was given")
    for dep in step.deps:
        if dep in blocked and not results[dep].partial:
            blocked.add(step.name)
            why = "failed" if results[dep].status is Status.FAILED else "was not run"
            return _skip(step, f"dependency {dep!r} {why}")
    if ctx.dry_run and not step.supports_dry_run:
        return _skip(step, "does not support dry runs; not run")
    if journal is not None:
        done = journal.completed(step.name)
        if done is not None:
            return done
        journal.step_started(step.name)
    return _run_step(step, ctx, _Running(step, progress), journal)
