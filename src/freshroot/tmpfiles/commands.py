"""``freshroot tmpfiles``: the same command as ``freshroot-tmpfiles`` (systemd-tmpfiles' command
line), plus ``freshroot tmpfiles render``. Argument definitions only: nothing heavy is imported."""

from __future__ import annotations

import argparse

from freshroot.cli import ArgumentParser, add_command
from freshroot.tmpfiles.command import ENVIRONMENT, add_arguments


def register(subparsers: argparse._SubParsersAction[ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "tmpfiles", handler="freshroot.tmpfiles.entry:run",
        help="create, remove and clean files as systemd-tmpfiles does; render tmpfiles.d files",
        description="Takes systemd-tmpfiles' command line (see freshroot-tmpfiles --help).\n\n"
        "freshroot tmpfiles render [--config PATH] [--output DIR] [--json]\n"
        "  writes the declaration's [tmpfiles] rules and settings as tmpfiles.d files\n"
        "  (to standard output, or into DIR).",
    )
    add_arguments(parser, debug=False)
    parser.epilog = ENVIRONMENT
    render = parser.add_argument_group("render (freshroot tmpfiles render)")
    render.add_argument("--config", metavar="PATH", action="append",
                        help="read the declaration from PATH instead of the root's freshroot.toml and conf.d")
    render.add_argument("--output", metavar="DIR", help="write the .conf files into DIR")
    render.add_argument("--json", action="store_true", help="print {file name: text} as one JSON document")
