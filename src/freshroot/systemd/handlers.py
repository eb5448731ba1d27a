"""Handlers of ``freshroot render``, ``install``, ``persist-prepare`` and ``persist-files``."""

from __future__ import annotations

import argparse
import os
import sys

from freshroot import log, rootpaths
from freshroot.activation.owners import resolve_accounts
from freshroot.compose import load_checked
from freshroot.config.load import load_declaration
from freshroot.errors import ConfigError, OperationError
from freshroot.fs.ops import open_root
from freshroot.output import print_json
from freshroot.persist.parse import parse
from freshroot.plan.action import Context
from freshroot.systemd import boot, units
from freshroot.systemd import install as install_mod
from freshroot.systemd.generator import render_table


def _open(root: str) -> int:
    try:
        return open_root(root)
    except OSError as e:
        raise OperationError(f"--root {root}: {e.strerror}") from e


def render(args: argparse.Namespace) -> int:
    root_fd = _open(args.root)
    try:
        table = load_checked(root_fd, args.config, root=args.root)
        rendered = render_table(table, resolve_accounts(root_fd, table).accounts, python=args.python or sys.executable,
                                initrd=args.initrd)
    finally:
        os.close(root_fd)
    try:
        done = units.write_directory(rendered, args.units, manifest=True)
    except OSError as e:
        raise OperationError(f"{e.filename or args.units}: {e.strerror}") from e
    for path in done.kept:
        log.warning(f"{os.path.join(args.units, path)}: written by an earlier render and changed since; left in place")
    if args.json:
        print_json({"directory": args.units, "units": rendered.names(),
                    "links": [link.path for link in rendered.links], "removed": done.removed, "kept": done.kept})
    else:
        for name in done.written:
            sys.stdout.write(os.path.join(args.units, name) + "\n")
        for name in done.removed:
            sys.stdout.write(f"removed {os.path.join(args.units, name)} (no longer rendered)\n")
    return 0


def install(args: argparse.Namespace) -> int:
    target = args.extra_files or args.root
    rootpaths.print_head("install to", target)  # the paths below are as the target sees them
    report = install_mod.install(target=target, accounts_root=args.root, config=args.config,
                                 copy=args.copy_self, dry_run=args.dry_run, machine_id=args.machine_id,
                                 host_keys=args.host_keys)
    for line in report.done:
        sys.stdout.write(line + "\n")
    for line in report.failed:
        log.error(f"failed: {line}")
    if not args.dry_run and not args.extra_files and not args.copy_self and install_mod.find_installed(target) is None:
        log.warning("note: no freshroot found on the target's Python path; the generator needs it: "
                    f"install it there (e.g. pip install --root {target} --prefix /usr freshroot), "
                    "or run install again with --copy-self")
    return OperationError.exit_code if report.failed else 0


def _head(words: str) -> None:
    """With --root other than / (never at boot), the line that names the root: the paths the
    boot commands print are as it sees them."""
    line = rootpaths.head(words)
    if line:
        boot.say(line)


def _skipped(error: ConfigError) -> None:
    """At boot, as in the generator: an entry no unit was written for is left out here too,
    and the others are prepared and bound (config check refuses it)."""
    log.error(f"{error}; this entry is skipped, the others are persisted")


def prepare(args: argparse.Namespace) -> int:
    root_fd = _open(args.root)
    try:
        ctx = Context(root_fd, args.root, dry_run=args.dry_run)
        _head("persist-prepare on")
        table = load_declaration(root_fd, args.config, root=args.root)
        p = parse(table, resolve_accounts(root_fd, table).accounts, skip=_skipped)
        return boot.prepare(p, ctx)
    finally:
        os.close(root_fd)


def files(args: argparse.Namespace) -> int:
    root_fd = _open(args.root)
    try:
        ctx = Context(root_fd, args.root, dry_run=args.dry_run)
        _head("persist-files on")
        if args.stop:
            return boot.files_stop(ctx)
        table = load_declaration(root_fd, args.config, root=args.root)
        p = parse(table, resolve_accounts(root_fd, table).accounts, skip=_skipped)
        return boot.files_start(p, ctx)
    finally:
        os.close(root_fd)
