"""The ``tmpfiles`` builtin step: the tmpfiles.d create (and remove) phase, as part of apply.

On a live systemd machine, tmpfiles.d is systemd's job at boot, and ``tmpfiles-resetup``
re-applies it after an apply (freshroot.systemd.resetup). Everywhere else (an offline root
such as /mnt, a machine without systemd) this step applies it: the root's own tmpfiles.d
files plus the declaration's rendered [tmpfiles] rules (as if in /run/tmpfiles.d, where the
boot unit puts them), with freshroot's engine, ``--create --remove`` as systemd's
tmpfiles-resetup does, excluding /dev (and /proc, /run, /sys on an offline root).

"Unchanged" must be exact without a dry run of every line: after applying, the step records
a fingerprint of the configuration and of every plain (non-glob) path it names; the next
apply has nothing to do while both are the same. Changes below glob lines (z /var/log/*) are
not part of the fingerprint: they are re-applied whenever anything else changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from freshroot.config.table import Table
from freshroot.errors import ConfigError, OperationError, UnsafePathError
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import mkdir_parents, read_fd, reopen
from freshroot.plan.action import Action, Context, Step
from freshroot.tmpfiles.model import Config

STEP_NAME = "tmpfiles"
STATE = "/run/freshroot/tmpfiles.json"


def _live_systemd(ctx: Context) -> bool:
    from freshroot.systemd.resetup import live_systemd

    return live_systemd(ctx)


def _load(ctx: Context, declaration: Table) -> Config:
    from freshroot.tmpfiles.declaration import check, parse_section
    from freshroot.tmpfiles.load import API_PREFIXES, LoadOptions, load
    from freshroot.tmpfiles.messages import Level, stderr_reporter

    rendered = parse_section(declaration.get_table("tmpfiles")).render()
    problems = check(rendered, root=ctx.root or "/")
    if problems:  # named at their TOML lines, not at the rendered file's
        raise ConfigError(problems[0].text, location=problems[0].location)
    extra = {r.name: r.text for r in rendered}
    exclude = ("/dev",) if ctx.root in ("", "/") else API_PREFIXES
    options = LoadOptions(root=ctx.root if ctx.root else "/", exclude_prefixes=exclude)
    return load(options, stderr_reporter(Level.ERR), extra=extra)


def _fingerprint(ctx: Context, config: Config) -> str:
    """A digest of the configuration and of what is at each plain path it names."""
    h = hashlib.sha256()
    for group in config.groups:
        for item in group.items:
            h.update(repr((item.type, item.path, item.mode, item.uid, item.gid, item.argument, item.binary,
                           item.age, item.plus, item.xattrs, item.attribute_value)).encode("utf-8", "surrogateescape"))
        h.update(_facts(ctx, group.path))
    for group in config.globs:
        for item in group.items:
            h.update(repr((item.type, item.path, item.mode, item.uid, item.gid, item.argument)).encode(
                "utf-8", "surrogateescape"))
    return h.hexdigest()


def _facts(ctx: Context, path: str) -> bytes:
    try:
        with chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
            st = found.st
            target = os.readlink("", dir_fd=found.fd) if stat.S_ISLNK(st.st_mode) else ""
            return repr((st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_rdev, target)).encode(
                "utf-8", "surrogateescape")
    except (OSError, UnsafePathError):
        return b"missing"


def _recorded(ctx: Context) -> str | None:
    try:
        with chase(STATE, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as found:
            fd = reopen(found.fd, os.O_RDONLY)
        try:
            data = json.loads(read_fd(fd))
        finally:
            os.close(fd)
    except (OSError, UnsafePathError, ValueError):
        return None
    value = data.get("fingerprint") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ApplyTmpfiles(Action):
    declaration: Table
    lines: int

    def describe(self) -> str:
        return f"apply tmpfiles.d ({self.lines} lines: --create --remove, freshroot's engine)"

    def apply(self, ctx: Context) -> None:
        from freshroot.tmpfiles.context import Context as TmpContext
        from freshroot.tmpfiles.context import Operation, Options
        from freshroot.tmpfiles.executor import run_phases

        config = _load(ctx, self.declaration)
        old_umask = os.umask(0)  # systemd-tmpfiles creates with explicit modes under umask 0
        try:
            status = run_phases(TmpContext(Options(root_fd=ctx.root_fd, root=ctx.root), config),
                                Operation.CREATE | Operation.REMOVE)
        finally:
            os.umask(old_umask)
        if status != 0:
            what = "bad lines" if status == 65 else "operations that failed"
            raise OperationError(f"tmpfiles.d: {what} (exit status {status}); the messages above name them")
        fingerprint = _fingerprint(ctx, config)
        with mkdir_parents(ctx.root_fd, os.path.dirname(STATE), 0o755) as d:
            replace_at(d.fd, os.path.basename(STATE), json.dumps({"fingerprint": fingerprint}).encode(),
                       mode=0o644)


def tmpfiles_steps(declaration: Table, deps: Iterable[str]) -> list[Step]:
    def planner(ctx: Context) -> Iterable[Action]:
        if _live_systemd(ctx):
            return []  # systemd applies tmpfiles.d; tmpfiles-resetup re-applies it after apply
        config = _load(ctx, declaration)
        if config.invalid:
            raise OperationError("tmpfiles.d has bad lines (the messages above name them)")
        if _recorded(ctx) == _fingerprint(ctx, config):
            return []
        lines = sum(len(g.items) for g in config.all_groups())
        return [ApplyTmpfiles(declaration, lines)] if lines else []

    location = declaration.location("tmpfiles") if "tmpfiles" in declaration else None
    return [Step(STEP_NAME, planner, tuple(deps), description="apply tmpfiles.d (offline root, or no systemd)",
                 location=location)]
