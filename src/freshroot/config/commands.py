"""``freshroot config``: argument definitions only (handlers in freshroot.config.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import ArgumentParser, add_command, add_common

    parser = add_command(
        subparsers, "config", handler="freshroot.config.handlers:show",
        help="show or check the declaration",
        description="Show or check the declaration: freshroot.toml and conf.d/*.toml from /etc/freshroot, "
        "/run/freshroot, /usr/local/lib/freshroot and /usr/lib/freshroot below --root, or --config.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=ArgumentParser,
                                     required=True)
    show = add_command(commands, "show", handler="freshroot.config.handlers:show",
                       help="print the merged declaration (TOML, or --json)")
    add_common(show, json=True)
    show.add_argument("--verbose", "-v", action="store_true",
                      help="annotate every value with the file:line that set it, and list the files read")
    check = add_command(commands, "check", handler="freshroot.config.handlers:check",
                        help="read and check the whole declaration as every command does first; "
                        "list every problem at file:line and exit 65")
    add_common(check, json=True)
