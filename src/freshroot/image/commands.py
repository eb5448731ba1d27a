"""``freshroot image``: argument definitions only (handlers in freshroot.image.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import ArgumentParser, add_command, add_common

    parser = add_command(
        subparsers, "image", handler="freshroot.image.handlers:build",  # a COMMAND is required
        help="build and inspect portable service images",
        description="Build systemd portable service images (NAME_VERSION.raw) from [portable.NAME] in the "
        "declaration, and look inside them.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=ArgumentParser,
                                     required=True)

    build = add_command(commands, "build", handler="freshroot.image.handlers:build",
                        help="build NAME_VERSION.raw from [portable.NAME]")
    build.add_argument("name", metavar="NAME", help="the image to build ([portable.NAME] in the declaration)")
    add_common(build, json=True,
               root_help="read the declaration below DIR (contents and libraries always come from the host's /)")
    build.add_argument("--output", "-o", metavar="DIR", default=".",
                       help="directory to write NAME_VERSION.raw to (default: the current directory)")
    build.add_argument("--format", choices=("squashfs", "erofs"),
                       help="file system of the image (default: the declaration's format, else squashfs)")

    inspect = add_command(commands, "inspect", handler="freshroot.image.handlers:inspect",
                          help="show an image's units, os-release and contents (no root needed)")
    inspect.add_argument("image", metavar="IMAGE", help="a .raw squashfs or erofs image")
    add_common(inspect, root=False, config=False, json=True)
