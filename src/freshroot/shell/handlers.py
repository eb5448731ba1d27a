"""Handler of ``freshroot completion``."""

from __future__ import annotations

import argparse
import os
import sys

from freshroot.errors import EXIT_DATAERR


def completion(args: argparse.Namespace) -> int:
    if args.images:
        return _images(args)
    if args.shell is None:
        sys.stderr.write("freshroot completion: name a SHELL: bash, zsh or fish\n")
        return EXIT_DATAERR
    from freshroot.shell import completion as scripts

    sys.stdout.write(scripts.script(args.shell))
    return 0


def _images(args: argparse.Namespace) -> int:
    """The names of [portable.NAME] in the declaration, one a line (what `image build` takes)."""
    from freshroot.config.load import load_declaration
    from freshroot.fs.ops import open_root

    root_fd = open_root(args.root)
    try:
        table = load_declaration(root_fd, args.config, root=args.root)
    finally:
        os.close(root_fd)
    for name, _table in table.get_table("portable").tables():
        sys.stdout.write(name + "\n")
    return 0
