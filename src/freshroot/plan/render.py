"""A Report as a tree people can read (``freshroot plan``, ``freshroot apply``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from freshroot.plan.executor import Report, StepResult

_MARK = {"changed": "+", "unchanged": "=", "skipped": "-", "failed": "!"}


def _head(result: StepResult, dry_run: bool) -> str:
    status = str(result.status)
    if dry_run and status == "changed":
        status = "would change"
    text = f"{_MARK[str(result.status)]} {result.name}: {status}"
    if result.resumed:
        text += " (done before the interruption)"
    elif result.reason:
        text += f" ({result.reason})"
    return text


def render_report(report: Report, *, output: bool = False) -> str:
    """The plan or the run as a tree: one line per step, its actions below it."""
    title = f"plan for {report.root}" if report.dry_run else f"apply to {report.root}"
    lines = [title]
    results = report.results
    for i, result in enumerate(results):
        last = i == len(results) - 1
        indent = "   " if last else "│  "
        lines.append(("└─ " if last else "├─ ") + _head(result, report.dry_run).replace("\n", "\n" + indent + "   "))
        children = list(result.actions)
        if result.error:
            children.append("error: " + result.error)
        if output or result.error:
            children += [f"| {line}" for line in result.output[-20:]]
        for j, child in enumerate(children):
            end = j == len(children) - 1
            first, *more = child.split("\n")
            lines.append(indent + ("└─ " if end else "├─ ") + first)
            lines.extend(indent + ("   " if end else "│  ") + line.strip() for line in more)
    counts = report.counts()
    changed = "would change" if report.dry_run else "changed"
    lines.append(
        f"{counts['changed']} {changed}, {counts['unchanged']} unchanged, "
        f"{counts['skipped']} skipped, {counts['failed']} failed"
    )
    if report.failed:
        names = ", ".join(f"{r.name} ({r.location})" if r.location else r.name for r in report.failed)
        lines.append(f"failed: {names}")
    return "\n".join(lines)
