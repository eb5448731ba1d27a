"""The handler behind ``freshroot tmpfiles``: ``render``, or systemd-tmpfiles' own command line."""

from __future__ import annotations

import argparse
import json
import os
import sys

from freshroot.errors import ConfigError, OperationError, UsageError

_MODES = ("create", "clean", "remove", "purge", "cat_config", "tldr")


def run(args: argparse.Namespace) -> int:
    if args.configs[:1] == ["render"] and not any(getattr(args, m, False) for m in _MODES):
        return render(args)
    if getattr(args, "config", None) or getattr(args, "output", None) or getattr(args, "json", False):
        raise UsageError("--config, --output and --json belong to 'freshroot tmpfiles render'")
    if args.cat_config or args.tldr:
        from freshroot.tmpfiles.load import run_cat

        return run_cat(args)
    from freshroot.cli import resolve_handler

    return resolve_handler("freshroot.tmpfiles.main:run")(args)  # the create/remove/clean phases


def render(args: argparse.Namespace) -> int:
    from freshroot.config.load import load_declaration
    from freshroot.fs import ops
    from freshroot.fs.atomic import replace_at
    from freshroot.tmpfiles.declaration import check, parse_section

    if len(args.configs) > 1:
        raise UsageError("'freshroot tmpfiles render' takes no file arguments; use --config PATH")
    root = os.path.abspath(args.root) if args.root else "/"
    root_fd = ops.open_root(root)
    try:
        table = load_declaration(root_fd, args.config, root=root)
    finally:
        os.close(root_fd)
    rendered = parse_section(table.get_table("tmpfiles")).render()
    problems = check(rendered, root=root)
    for p in problems:
        sys.stderr.write(f"{p}\n")
    if problems:
        raise ConfigError(f"{len(problems)} tmpfiles entr{'y' if len(problems) == 1 else 'ies'} would not "
                          "parse as systemd reads them; nothing written")
    if args.json:
        sys.stdout.write(json.dumps({r.name: r.text for r in rendered}, indent=2) + "\n")
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
