"""The small builtin steps, named as NixOS names them: ``specialfs``, ``binsh``, ``usrbinenv``.

```toml
[environment]
binsh = "/usr/bin/dash"      # what /bin/sh points to (default: leave an existing one alone)
usrbinenv = "/usr/bin/env"   # what /usr/bin/env must be (default: leave an existing one alone)
```

Each is idempotent and does its work as actions on file descriptors, not in shell.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from freshroot.config import fields
from freshroot.config.table import Table
from freshroot.errors import OperationError
from freshroot.fs.atomic import replace_symlink_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import lstat_at, mkdir_parents
from freshroot.plan.action import Action, Context, Planner, Step, step_output
from freshroot.plan.records import Record, wrote_files

# When /bin/sh is missing and nothing is declared: the first of these the root has.
SHELLS = ("/usr/bin/dash", "/bin/dash", "/usr/bin/bash", "/bin/bash")


@dataclass(frozen=True)
class Environment:
    """The [environment] settings: what /bin/sh and /usr/bin/env link to (None: found in the root)."""
    binsh: str | None = None
    usrbinenv: str | None = None


def parse_environment(section: Table) -> Environment:
    section.reject_unknown(frozenset({"binsh", "usrbinenv"}))
    out = {}
    for key in ("binsh", "usrbinenv"):
        out[key] = fields.opt_path(section, key)  # absolute, canonical, no NUL: a symlink's target
    return Environment(out["binsh"], out["usrbinenv"])


def _exists(ctx: Context, path: str) -> bool:
    try:
        with chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE):
            return True
    except (FileNotFoundError, NotADirectoryError):
        return False


def _current(ctx: Context, path: str) -> tuple[str, str]:
    """("missing" | "symlink" | "other", link target)."""
    try:
        with chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.PARENT | ChaseFlags.SAFE) as parent:
            st = lstat_at(parent.fd, parent.rest)
            if stat.S_ISLNK(st.st_mode):
                return "symlink", os.readlink(parent.rest, dir_fd=parent.fd)
            return "other", ""
    except FileNotFoundError:
        return "missing", ""


@dataclass(frozen=True)
class Symlink(Action):
    """Make ``path`` a symlink to ``target``, replacing a symlink atomically (never a file)."""

    path: str
    target: str

    def describe(self) -> str:
        return f"link {self.path} -> {self.target}"

    def apply(self, ctx: Context) -> None:
        directory, name = posixpath.split(self.path)
        with mkdir_parents(ctx.root_fd, directory, 0o755) as d:
            replace_symlink_at(d.fd, name, self.target)

    def records(self, ctx: Context) -> Sequence[Record]:
        # What was there (a symlink, or nothing; a file only with --fix), and the directories
        # mkdir_parents makes: undo puts the old link back, or removes ours and them.
        return wrote_files(ctx.root_fd, [(self.path, "symlink:" + self.target)])


def _link_planner(path: str, declared: str | None, fallback: Iterable[str]) -> Planner:
    def planner(ctx: Context) -> Iterable[Action]:
        kind, target = _current(ctx, path)
        if declared is None:
            if kind != "missing":
                return ()  # not declared: whatever the root has is its business
            found = next((c for c in fallback if _exists(ctx, c)), None)
            if found is None:
                step_output(ctx)(f"warning: {ctx.display(path)} is missing and there is nothing to link it to")
                return ()
            return (Symlink(path, found),)
        if kind == "symlink" and target == declared:
            return ()
        if kind == "other" and not ctx.fix:
            raise OperationError(f"{ctx.display(path)} is a file, not a symlink; not replacing it",
                                 hint=f"apply --fix replaces it with a link to {declared}")
        if not _exists(ctx, declared):
            step_output(ctx)(f"warning: {ctx.display(declared)} does not exist (yet)")
        return (Symlink(path, declared),)

    return planner


def binsh_step(env: Environment) -> Step:
    return Step("binsh", _link_planner("/bin/sh", env.binsh, SHELLS), ("specialfs",), description="/bin/sh")


def usrbinenv_step(env: Environment) -> Step:
    return Step("usrbinenv", _link_planner("/usr/bin/env", env.usrbinenv, ("/bin/env",)), ("specialfs",),
                description="/usr/bin/env")
