"""Activation snippets: the declaration's own pieces of shell, as NixOS's activationScripts.

```toml
[activation.motd]
text = "echo welcome > \"$FRESHROOT_ROOT/etc/motd\""
deps = ["etc"]
supports-dry-activation = false
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
from collections.abc import Iterable
from dataclasses import dataclass

from freshroot.config.table import Table
from freshroot.errors import Location, OperationError
from freshroot.plan.action import Action, Context, Step
from freshroot.plan.executor import step_child, step_output

KEYS = frozenset({"text", "deps", "supports-dry-activation", "description"})

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
    name: str
    text: str
    deps: tuple[str, ...] = ()
    supports_dry_activation: bool = False
    description: str = ""
    location: Location | None = None


def parse_snippets(activation: Table, reserved: Iterable[str] = ()) -> list[Snippet]:
    """``[activation.<name>]`` tables (or ``<name> = "text"``, as NixOS allows a plain string)."""
    taken = set(reserved)
    out = []
    for name in activation:
        where = activation.location(name)
        if name in taken:
            raise activation.error(
                f"activation.{name}: {name!r} is the name of a builtin step", name,
                hint=f"choose another name; to run after it, use deps = [{name!r}]",
            )
        if not name or any(c in name for c in "/\n\t ") or name.startswith("-"):
            raise activation.error(f"activation.{name!r}: a snippet name is a word without spaces or '/'", name)
        value = activation.raw(name)
        if isinstance(value, str):
            out.append(Snippet(name, value, location=where))
            continue
        if not isinstance(value, dict):
            raise activation.error(f"{activation.name(name)} must be a table or a string", name)
        table = activation.sub(name, value)
        table.reject_unknown(KEYS)
        deps = table.get_str_list("deps")
        for i, dep in enumerate(deps):
            if dep == name:
                raise table.error(f"{table.name('deps', i)}: a snippet cannot depend on itself", "deps", i)
        out.append(Snippet(
            name,
            table.req_str("text"),
            tuple(deps),
            table.get_bool("supports-dry-activation", default=False),
            table.get_str("description", "") or "",
            where,
        ))
    return out


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
    snippet: Snippet

    # Only steps whose snippet supports dry activation are planned in a dry run at all,
    # and those run with FRESHROOT_ACTION=dry-activate.
    applies_in_dry_run = True

    def describe(self) -> str:
        lines = self.snippet.text.count("\n") + (0 if self.snippet.text.endswith("\n") else 1)
        return f"run snippet {self.snippet.name} ({lines} line{'s' if lines != 1 else ''} of bash)"

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


def snippet_step(snippet: Snippet) -> Step:
    def planner(ctx: Context) -> Iterable[Action]:
        return (RunSnippet(snippet),)

    return Step(
        snippet.name, planner, snippet.deps,
        description=snippet.description or "activation snippet",
        supports_dry_run=snippet.supports_dry_activation,
        location=snippet.location,
    )

