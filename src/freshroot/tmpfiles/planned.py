"""The declaration's tmpfiles.d as ``freshroot apply`` sees it, for the ``tmpfiles`` step and
for ``tmpfiles-resetup``: the root's own tmpfiles.d files plus the [tmpfiles] rules rendered as
if in /run/tmpfiles.d (where the boot and resetup units write them), read as those units read
them (/dev excluded; on an offline root /proc, /run and /sys too), and what the engine would
change there with ``--create --remove`` (freshroot.tmpfiles.decide).
"""

from __future__ import annotations

import os
from dataclasses import replace

from freshroot.config.table import Table
from freshroot.errors import ConfigError, Location, OperationError, UnsafePathError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import read_fd, reopen
from freshroot.rootpaths import in_root
from freshroot.tmpfiles.context import Context, Operation, Options
from freshroot.tmpfiles.decide import Decision, decide
from freshroot.tmpfiles.declaration import Rendered
from freshroot.tmpfiles.model import Config

RUN_DIR = "/run/tmpfiles.d"
OPERATIONS = Operation.CREATE | Operation.REMOVE  # as systemd-tmpfiles-resetup.service


def rendered(declaration: Table, root: str) -> list[Rendered]:
    """The [tmpfiles] section as tmpfiles.d files; a rule systemd would not read is the
    declaration's error, named at its TOML line."""
    from freshroot.tmpfiles.declaration import check, parse_section

    files = parse_section(declaration.get_table("tmpfiles")).render()
    problems = check(files, root=root or "/")
    if problems:
        raise ConfigError(problems[0].text, location=problems[0].location)
    return files


def load_declared(root_fd: int, root: str, declaration: Table) -> Config:
    del root_fd  # the reader opens the root itself, as systemd-tmpfiles --root does
    from freshroot.tmpfiles.load import API_PREFIXES, LoadOptions, load
    from freshroot.tmpfiles.messages import Level, Message, stderr_reporter

    extra = {r.name: r.text for r in rendered(declaration, root)}
    exclude = ("/dev",) if root in ("", "/") else API_PREFIXES
    options = LoadOptions(root=root if root else "/", exclude_prefixes=exclude)
    report = stderr_reporter(Level.ERR)

    def in_root_named(message: Message) -> None:
        """The reader names files below --root, as systemd-tmpfiles: apply names them as
        the root sees them (freshroot.rootpaths)."""
        where = message.location
        report(message if where is None else
               replace(message, location=Location(in_root(where.file, root or "/"), where.line)))

    return load(options, in_root_named, extra=extra)


def decisions(root_fd: int, root: str, declaration: Table) -> tuple[Context, list[Decision]]:
    """What the engine would change, line by line in its order, with the engine's context
    that applies them (freshroot.tmpfiles.executor.process_item)."""
    config = load_declared(root_fd, root, declaration)
    if config.invalid:
        raise OperationError("tmpfiles.d has bad lines (the messages above name them)")
    # the engine's messages name paths as the root sees them, as every message of apply does
    ctx = Context(Options(root_fd=root_fd, root=root or "/", display_root="/"), config)
    return ctx, decide(ctx, OPERATIONS)


def stale_rendered(root_fd: int, declaration: Table) -> list[str]:
    """The rendered files /run/tmpfiles.d lacks or holds with other text (so other tmpfiles.d
    readers, such as the clean timer, still see old rules)."""
    stale = []
    for r in rendered(declaration, "/"):
        path = f"{RUN_DIR}/{r.name}"
        try:
            with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
                fd = reopen(found.fd, os.O_RDONLY | os.O_NONBLOCK)
            try:
                same = read_fd(fd) == r.text.encode("utf-8", "surrogateescape")
            finally:
                os.close(fd)
        except (OSError, UnsafePathError):
            same = False
        if not same:
            stale.append(path)
    return stale
