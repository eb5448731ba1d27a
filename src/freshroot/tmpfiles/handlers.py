"""The handlers behind ``freshroot-tmpfiles`` and ``freshroot tmpfiles``: :func:`run` reads the
configuration (freshroot.tmpfiles.load), then runs the phases (freshroot.tmpfiles.executor);
:func:`command` is ``freshroot tmpfiles``: ``render``, or the same as ``run``.

Exit status as systemd-tmpfiles: 65 when a line was bad configuration (the rest is still
applied), 73 when an operation failed, 1 when nothing could be applied at all.
"""

from __future__ import annotations

import argparse
import os
import sys

from freshroot.errors import EXIT_FAILURE, ConfigError, OperationError, TmpfilesUsageError, UsageError
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
    """As systemd-tmpfiles: arguments it refuses are said without a program-name prefix."""
    try:
        return _run(args)
    except TmpfilesUsageError as e:
        sys.stderr.write(f"{e}\n")
        return e.exit_code


def _run(args: argparse.Namespace) -> int:
    from freshroot.tmpfiles.load import LoadOptions, load

    if getattr(args, "image_policy", None) is not None:
        from freshroot.tmpfiles.image_policy import problem

        refused = problem(args.image_policy)
        if refused is not None:
            raise TmpfilesUsageError(refused)
    if getattr(args, "image", None):
        from freshroot.tmpfiles.image import run_in_image

        return run_in_image(args, _run)

    options = LoadOptions.from_args(args)
    if getattr(args, "cat_config", False) or getattr(args, "tldr", False):
        from freshroot.tmpfiles.load import run_cat

        return run_cat(args)
    if getattr(args, "explain", None):
        from freshroot.tmpfiles.explain import explain

        return explain(args.explain, load(options), options.root, purge=bool(args.configs))
    ops = operations(args)
    if not ops:
        raise TmpfilesUsageError("You need to specify at least one of --clean, --create, --remove, or --purge.")
    if Operation.PURGE in ops and not args.configs:
        raise TmpfilesUsageError("Refusing --purge without specification of a configuration file.")
    if options.root not in ("", "/"):
        # systemd 262 sets up its label context for the root before it reads anything; a root
        # it cannot open ends the run there, in these words (--cat-config words it otherwise).
        try:
            os.close(os.open(options.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as e:
            sys.stderr.write(f"Failed to initialize label context for root '{options.root}': {e.strerror}\n")
            return EXIT_FAILURE
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


_MODES = ("create", "clean", "remove", "purge", "cat_config", "tldr")


def command(args: argparse.Namespace) -> int:
    if args.configs[:1] == ["render"] and not any(getattr(args, m, False) for m in _MODES):
        return render(args)
    if getattr(args, "config", None) or getattr(args, "output", None) or getattr(args, "json", False):
        raise UsageError("--config, --output and --json belong to 'freshroot tmpfiles render'")
    if args.cat_config or args.tldr:
        from freshroot.tmpfiles.load import run_cat

        return run_cat(args)
    return run(args)  # the create/remove/clean phases


def render(args: argparse.Namespace) -> int:
    from freshroot.compose import load_checked
    from freshroot.fs import ops
    from freshroot.fs.atomic import replace_at
    from freshroot.tmpfiles.declaration import check, parse_section

    if len(args.configs) > 1:
        raise UsageError("'freshroot tmpfiles render' takes no file arguments; use --config PATH")
    root = os.path.abspath(args.root) if args.root else "/"
    from freshroot import rootpaths

    rootpaths.remember_root(root)  # freshroot's own command: its messages and JSON as every other's
    root_fd = ops.open_root(root)
    try:
        declaration = load_checked(root_fd, args.config, root=root)
    finally:
        os.close(root_fd)
    rendered = parse_section(declaration.get_table("tmpfiles")).render()
    problems = check(rendered, root=root)
    for p in problems:
        sys.stderr.write(f"{p}\n")
    if problems:
        raise ConfigError(f"{len(problems)} tmpfiles entr{'y' if len(problems) == 1 else 'ies'} would not "
                          "parse as systemd reads them; nothing written")
    if args.json:
        from freshroot.output import print_json

        print_json({"files": {r.name: r.text for r in rendered}})
    elif args.output:
        try:
            os.makedirs(args.output, exist_ok=True)
            dir_fd = os.open(args.output, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise OperationError(f"{args.output}: {e.strerror}") from e
        try:
            for r in rendered:
                replace_at(dir_fd, r.name, r.text.encode("utf-8", "surrogateescape"), mode=0o644)
        finally:
            os.close(dir_fd)
    else:
        sys.stdout.write("\n".join(f"# {r.name}\n{r.text}" for r in rendered))
    return 0
