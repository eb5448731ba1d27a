"""What a run did: each step's result, the report of the whole run, and that report as a
tree people can read (``freshroot plan``, ``freshroot apply``).

Apart from the executor that makes them, so the journal (which stores and replays results)
and the progress display read them without importing the executor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from freshroot.output import BOX, STATUS_STYLES, paint


class Status(enum.StrEnum):
    CHANGED = "changed"  # actions were applied (in a dry run: would be)
    UNCHANGED = "unchanged"  # the root already was as declared
    SKIPPED = "skipped"  # not run; ``reason`` says why
    FAILED = "failed"  # planning or applying raised; ``error`` says what


@dataclass(frozen=True)
class StepResult:
    """What one step of a plan did (or would do)."""
    name: str
    status: Status
    description: str = ""
    actions: tuple[str, ...] = ()  # descriptions of the actions applied (or planned)
    error: str | None = None
    reason: str | None = None  # why a step was skipped
    output: tuple[str, ...] = ()  # what the step printed (snippets)
    location: str | None = None  # file:line of the declaration
    duration: float = 0.0
    resumed: bool = False  # done by an earlier, interrupted run of the same plan
    # Failed, but only some of its actions (an isolated step): everything else it had to do
    # was done, so the steps after it still run.
    partial: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": str(self.status), "actions": list(self.actions)}
        for key in ("description", "error", "reason", "location"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.output:
            out["output"] = list(self.output)
        if self.resumed:
            out["resumed"] = True
        if self.partial:
            out["partial"] = True
        out["duration"] = round(self.duration, 6)
        return out


@dataclass(frozen=True)
class Report:
    """What a whole plan did (or would do): the `apply --json` document."""
    results: tuple[StepResult, ...]
    dry_run: bool = False
    root: str = "/"
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.results if r.status is Status.FAILED)

    @property
    def changed(self) -> bool:
        return any(r.status is Status.CHANGED for r in self.results)

    def result(self, name: str) -> StepResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((str(s) for s in Status), 0)
        for r in self.results:
            counts[str(r.status)] += 1
        return counts

    def render(self, *, chars: tuple[str, str, str, str] = BOX, colour: bool = False) -> str:
        return render_report(self, chars=chars, colour=colour)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "root": self.root,
            "run_id": self.run_id,
            "counts": self.counts(),
            "failed": [r.name for r in self.failed],
            "steps": [r.to_json() for r in self.results],
        }


_MARK = {"changed": "+", "unchanged": "=", "skipped": "-", "failed": "!"}
_STYLE = STATUS_STYLES  # changed green, unchanged dim, skipped yellow, failed red


def _head(result: StepResult, dry_run: bool, colour: bool = False) -> str:
    status = str(result.status)
    if dry_run and status == "changed":
        status = "would change"
    mark = paint(_MARK[str(result.status)], _STYLE[str(result.status)], colour)
    text = f"{mark} {result.name}: {paint(status, _STYLE[str(result.status)], colour)}"
    if result.resumed:
        text += " (done before the interruption)"
    elif result.reason:
        text += f" ({result.reason})"
    return text


def render_report(report: Report, *, output: bool = False, chars: tuple[str, str, str, str] = BOX,
                  colour: bool = False) -> str:
    """The plan or the run as a tree: one line per step, its actions below it. ``chars``:
    the tree's (branch, last branch, continuation, blank), freshroot.output.tree_chars;
    ``colour``: marks and statuses in colour (a terminal)."""
    tee, corner, bar, blank = chars
    title = f"plan for {report.root}" if report.dry_run else f"apply to {report.root}"
    lines = [paint(title, "bold", colour)]
    results = report.results
    for i, result in enumerate(results):
        last = i == len(results) - 1
        indent = blank if last else bar
        head = _head(result, report.dry_run, colour).replace("\n", "\n" + indent + blank)
        lines.append((corner if last else tee) + head)
        children = list(result.actions)
        if result.error:
            children.append(paint("error:", "red+bold", colour) + " " + result.error)
        if output or result.error:
            children += [f"| {line}" for line in result.output[-20:]]
        for j, child in enumerate(children):
            end = j == len(children) - 1
            first, *more = child.split("\n")
            lines.append(indent + (corner if end else tee) + first)
            lines.extend(indent + (blank if end else bar) + line.strip() for line in more)
    counts = report.counts()
    changed = "would change" if report.dry_run else "changed"
    failed = f"{counts['failed']} failed"
    lines.append(
        f"{counts['changed']} {changed}, {counts['unchanged']} unchanged, "
        f"{counts['skipped']} skipped, {paint(failed, 'red+bold', colour and counts['failed'] > 0)}"
    )
    if report.failed:
        names = ", ".join(f"{r.name} ({r.location})" if r.location else r.name for r in report.failed)
        lines.append(paint(f"failed: {names}", "red", colour))
    return "\n".join(lines)
