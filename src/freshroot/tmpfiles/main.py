"""The handler behind ``freshroot-tmpfiles`` and ``freshroot tmpfiles``: read the configuration
(freshroot.tmpfiles.load), then run the phases (freshroot.tmpfiles.executor).

Exit status as systemd-tmpfiles: 65 when a line was bad configuration (the rest is still
applied), 73 when an operation failed, 1 when nothing could be applied at all.
"""

from __future__ import annotations

import argparse
import os

from freshroot.errors import EXIT_FAILURE, UsageError
from freshroot.fs.ops import open_root
from freshroot.tmpfiles.context import Context, Operation, Options


def operations(args: argparse.Namespace) -> Operation:
    op = Operation.NONE
    for flag, value in (("create", Operation.CREATE), ("remove", Operation.REMOVE),
                        ("clean", Operation.CLEAN), ("purge", Operation.PURGE)):
        if getattr(args, flag, False):
            op |= value
    return op


def run(args: argparse.Namespace) -> int:
    from freshroot.tmpfiles.load import LoadOptions, load

    if getattr(args, "image", None):
        from freshroot.tmpfiles.image import run_in_image

        return run_in_image(args, run)

    options = LoadOptions.from_args(args)
    if getattr(args, "cat_config", False) or getattr(args, "tldr", False):
        from freshroot.tmpfiles.load import run_cat

        return run_cat(args)
    if getattr(args, "explain", None):
        from freshroot.tmpfiles.explain import explain

        return explain(args.explain, load(options), options.root, purge=bool(args.configs))
    ops = operations(args)
    if not ops:
        raise UsageError("You need to specify at least one of --clean, --create, --remove, or --purge.")
    if Operation.PURGE in ops and not args.configs:
        raise UsageError("Refusing --purge without specification of a configuration file.")
    config = load(options)
    if config.read_failed:
        return EXIT_FAILURE
    from freshroot.tmpfiles.executor import run_phases

    root_fd = open_root(options.root)
    # systemd creates everything under umask 0 with explicit modes; so do we.
    old_umask = os.umask(0)
    try:
        ctx = Context(Options(root_fd=root_fd, root=options.root, dry_run=bool(args.dry_run)), config)
        return run_phases(ctx, ops)
    finally:
        os.umask(old_umask)
        os.close(root_fd)
