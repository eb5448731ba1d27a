"""``freshroot completion``: argument definitions only (handlers in freshroot.shell.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

SHELLS = ("bash", "zsh", "fish")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import add_command, add_common

    parser = add_command(
        subparsers, "completion", handler="freshroot.shell.handlers:completion",
        help="print the shell completion script for bash, zsh or fish",
        description="Print the completion script of freshroot and freshroot-tmpfiles for SHELL, written\n"
        "from their own parsers (the packages install it). To try it in a running shell:\n\n"
        "  bash:  source <(freshroot completion bash)\n"
        "  zsh:   source <(freshroot completion zsh)\n"
        "  fish:  freshroot completion fish | source",
    )
    parser.add_argument("shell", metavar="SHELL", nargs="?", choices=SHELLS, help="bash, zsh or fish")
    # What the scripts call to complete `image build NAME`: the declared image names, one a
    # line. Not for people, so not in --help.
    parser.add_argument("--images", action="store_true", help=argparse.SUPPRESS)
    add_common(parser, root_help="read the declaration below DIR (where the scripts find image names)")
