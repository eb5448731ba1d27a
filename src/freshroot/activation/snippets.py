"""Activation snippets: the declaration's own pieces of shell, as NixOS's activationScripts.

```toml
[activation.motd]
text = "echo welcome > \"$FRESHROOT_ROOT/etc/motd\""
deps = ["etc"]
supports-dry-activation = false
files = ["/etc/motd"]      # what it writes: undo puts back what was there before it ran
```

Each snippet runs as its own bash process (not spliced into one script, as NixOS does), so
one snippet's `set`, traps or variables cannot leak into the next, and its exit status is its
own. The shell is strict: errexit, pipefail, errtrace and inherit_errexit, so a failing
command inside a function or a command substitution fails the snippet (NixOS's ERR trap
misses those). FRESHROOT_ACTION is set by the runner (``activate`` or ``dry-activate``):
a snippet never has to trust the caller for it, and one that does not declare
supports-dry-activation is never started by a dry run.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from freshroot.config import fields
from freshroot.config.table import Table
from freshroot.errors import Location, OperationError, Problems
from freshroot.plan.action import Action, Context, Step, step_child, step_output
from freshroot.plan.records import MadeDirectory, NotReverted, Record, UndoReport, WroteFile, look, record_type

KEYS = frozenset({"text", "deps", "supports-dry-activation", "description", "files"})

# The first line of every snippet's script. Kept on one line, ending in ';', so the
# snippet's own first line is line 1 and $LINENO in messages matches the declaration.
# The ERR trap reports where a failure happened on a marker line the runner picks out.
MARKER = "\x1efreshroot-err\x1e"
# The first line waits for freshroot to record the snippet's process group in the journal
# (run.stream's start line): a snippet killed with its freshroot is then always stopped by the
# resumed run, never left racing it. EOF there means freshroot died first: do nothing.
PRELUDE = (
    "read -r _ || exit 125; "
    "set -o errexit -o pipefail -o errtrace; shopt -s inherit_errexit; umask 0022; "
    f"trap 'printf \"{MARKER}%s\\t%s\\t%s\\n\" \"$?\" \"$LINENO\" \"$BASH_COMMAND\" >&2' ERR; "
)


@dataclass(frozen=True)
class Snippet:
    """One named activation snippet of the declaration: its shell text, what it runs after, and what it
    writes."""
    name: str
    text: str
    deps: tuple[str, ...] = ()
    supports_dry_activation: bool = False
    description: str = ""
    location: Location | None = None
    files: tuple[str, ...] = ()  # absolute paths in the root the snippet writes (for undo)


def _script(table: Table, key: str) -> str:
    """A snippet's text: bash gets it as an argument, which cannot hold a NUL byte."""
    text = table.req_str(key)
    if "\0" in text:
        raise table.error(f"{table.name(key)} contains a NUL byte, which bash cannot be given", key)
    return text


def parse_snippets(activation: Table, reserved: Iterable[str] = ()) -> list[Snippet]:
    """``[activation.<name>]`` tables (or ``<name> = "text"``, as NixOS allows a plain string);
    every bad one is reported (DeclarationError), not only the first."""
    taken = frozenset(reserved)
    out = []
    problems = Problems()
    for name in activation:
        with problems:
            out.append(_snippet(activation, name, taken))
    problems.raise_all()
    return out


def _snippet(activation: Table, name: str, taken: frozenset[str]) -> Snippet:
    where = activation.location(name)
    if name in taken:
        raise activation.error(
            f"activation.{name}: {name!r} is the name of a builtin step", name,
            hint=f"choose another name; to run after it, use deps = [{name!r}]",
        )
    if not name or any(c in name for c in "/ ") or name.startswith("-") or fields.text_problem(name):
        raise activation.error(f"{activation.name(name)}: a snippet name is a word without spaces, "
                               "'/' or control characters", name)
    value = activation.raw(name)
    if isinstance(value, str):
        return Snippet(name, _script(activation, name), location=where)
    if not isinstance(value, dict):
        raise activation.error(f"{activation.name(name)} must be a table or a string", name)
    table = activation.sub(name, value)
    table.reject_unknown(KEYS)
    deps = table.get_str_list("deps")
    for i, dep in enumerate(deps):
        if dep == name:
            raise table.error(f"{table.name('deps', i)}: a snippet cannot depend on itself", "deps", i)
    files = table.get_str_list("files")
    for i, path in enumerate(files):
        if not path.startswith("/") or posixpath.normpath(path) != path or path == "/" or "\0" in path:
            raise table.error(f"{table.name('files', i)}: {path!r} is not a canonical absolute path",
                              "files", i, hint='write it as "/etc/motd", without "..", "." or a trailing "/"')
    return Snippet(
        name,
        _script(table, "text"),
        tuple(deps),
        table.get_bool("supports-dry-activation", default=False),
        fields.text(table, "description", default="") or "",  # one line of plan output
        where,
        tuple(files),
    )


def snippet_env(ctx: Context, name: str) -> dict[str, str]:
    from freshroot.run import BASE_ENV

    return {
        **BASE_ENV,
        "HOME": os.environ.get("HOME", "/root"),
        "FRESHROOT_ACTION": "dry-activate" if ctx.dry_run else "activate",
        "FRESHROOT_ROOT": os.path.abspath(ctx.root),  # the cwd below is the root: never relative
        "FRESHROOT_SNIPPET": name,
    }


@dataclass(frozen=True)
class RunSnippet(Action):
    """Run one activation snippet with /bin/sh, FRESHROOT_ACTION set."""
    snippet: Snippet

    # Only steps whose snippet supports dry activation are planned in a dry run at all,
    # and those run with FRESHROOT_ACTION=dry-activate.
    applies_in_dry_run = True

    def describe(self) -> str:
        lines = self.snippet.text.count("\n") + (0 if self.snippet.text.endswith("\n") else 1)
        return f"run snippet {self.snippet.name} ({lines} line{'s' if lines != 1 else ''} of bash)"

    def records(self, ctx: Context) -> Sequence[Record]:
        if not self.snippet.files:
            return (NotReverted(f"snippet {self.snippet.name} (it declares no files)"),)
        # Parents before what is below them: undo, newest first, empties a directory first.
        return [SnippetWrote.change(ctx.root_fd, path, "") for path in sorted(self.snippet.files)]

    def apply(self, ctx: Context) -> None:
        from freshroot.run import stream

        emit = step_output(ctx)
        failures: list[str] = []

        def on_line(line: str) -> None:
            if line.startswith(MARKER):
                failures.append(line[len(MARKER):])
            else:
                emit(line)

        name = self.snippet.name
        status = stream(
            ["bash", "--noprofile", "--norc", "-c", PRELUDE + self.snippet.text, f"activation:{name}"],
            on_line, env=snippet_env(ctx, name), cwd=ctx.root, new_session=True, on_start=step_child(ctx),
        )
        if status == 0:
            return
        where = ""
        if failures:
            # The innermost failure is reported first (errtrace runs the trap in each subshell).
            code, line, command = [*failures[0].split("\t", 2), "", ""][:3]
            where = f" at line {line}: `{command}` exited with status {code}"
        raise OperationError(f"snippet {name!r} failed (exit status {status}){where}",
                             location=self.snippet.location)


@record_type
@dataclass(frozen=True)
class SnippetWrote(WroteFile):
    """A path a snippet declares it writes (``files``), with what was there before it ran. What
    the snippet wrote is not known in advance, so undo does not check it: it removes what is
    there (a file, a symlink, an empty directory) and puts back what was there before."""

    TYPE: ClassVar[str] = "snippet.file"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        now = look(ctx.root_fd, self.path)
        if self.before_kind == "other":
            report.kept.append(f"{ctx.display(self.path)}: not a file or symlink before the snippet ran; "
                               "left as it is")
            return
        if now.kind == "other" and self.before_kind == "missing":
            MadeDirectory(self.path).revert(ctx, report)  # a directory: removed only if empty
            return
        if now.kind != "missing" or self.before_kind != "missing":
            replace(self, after=now.digest).revert_checked(ctx, report, now)


def snippet_step(snippet: Snippet) -> Step:
    def planner(ctx: Context) -> Iterable[Action]:
        return (RunSnippet(snippet),)

    return Step(
        snippet.name, planner, snippet.deps,
        description=snippet.description or "activation snippet",
        supports_dry_run=snippet.supports_dry_activation,
        location=snippet.location,
    )

