"""Handlers of ``freshroot config show`` and ``freshroot config check``."""

from __future__ import annotations

import argparse
import os
import sys

from freshroot import rootpaths
from freshroot.compose import check_sections
from freshroot.config.load import Loaded, load
from freshroot.config.render import to_json, to_toml
from freshroot.fs.ops import open_root
from freshroot.output import STATUS_STYLES, colour_wanted, paint, print_json


def _load(args: argparse.Namespace) -> Loaded:
    root: str = args.root
    root_fd = open_root(root)
    try:
        return load(root_fd, args.config, root=root)
    finally:
        os.close(root_fd)


def _head(args: argparse.Namespace, loaded: Loaded, words: str) -> None:
    """The line that names the root (with --root other than /) when files found in it are
    named below, as the root sees them (freshroot.rootpaths)."""
    if args.config is None and (loaded.files or loaded.masked):
        rootpaths.print_head(words)


def _check_owners(args: argparse.Namespace, loaded: Loaded) -> None:
    """Persisted entries' owners resolve against the root and the declaration's own users
    (freshroot.activation.owners), as install, plan and the generator resolve them. A root
    without /etc/passwd (a declaration checked on its own) has nothing to resolve against."""
    if "persist" not in loaded.table or not os.path.exists(os.path.join(args.root, "etc/passwd")):
        return
    from freshroot.activation.owners import resolve_accounts
    from freshroot.persist.parse import parse

    root_fd = open_root(args.root)
    try:
        parse(loaded.table, resolve_accounts(root_fd, loaded.table).accounts)
    finally:
        os.close(root_fd)


def show(args: argparse.Namespace) -> int:
    loaded = _load(args)
    verbose = bool(getattr(args, "verbose", False))
    if args.json:
        print_json(to_json(loaded.table, loaded.files, loaded.masked, verbose=verbose))
        return 0
    if verbose:
        _head(args, loaded, "# declaration of")
        for name in loaded.files:
            sys.stdout.write(f"# read {name}\n")
        for name in loaded.masked:
            sys.stdout.write(f"# masked by {name}\n")
        if not loaded.files:
            sys.stdout.write("# no declaration found\n")
    sys.stdout.write(to_toml(loaded.table, verbose=verbose))
    return 0


def check(args: argparse.Namespace) -> int:
    loaded = _load(args)
    states = check_sections(loaded.table)
    _check_owners(args, loaded)
    if args.json:
        document = {"ok": True, "files": list(loaded.files), "masked": list(loaded.masked), "sections": states}
        print_json(document)
        return 0
    _head(args, loaded, "declaration of")
    if not loaded.files:
        sys.stdout.write("no declaration found (nothing to check)\n")
    for name in loaded.files:
        sys.stdout.write(f"read {name}\n")
    for name in loaded.masked:
        sys.stdout.write(f"masked by {name}\n")
    colour = colour_wanted(sys.stdout)
    for name, state in states.items():
        style = STATUS_STYLES["valid"] if state == "valid" else "yellow"  # else: not checked, only parsed
        sys.stdout.write(f"{paint(f'[{name}]', 'bold', colour)}: {paint(state, style, colour)}\n")
    return 0
