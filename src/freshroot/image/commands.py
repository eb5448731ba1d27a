"""``freshroot image``: build and inspect portable service images (argparse only)."""

from __future__ import annotations

import argparse

from freshroot.cli import ArgumentParser, add_command, add_common


def register(subparsers: argparse._SubParsersAction[ArgumentParser]) -> None:
    image = subparsers.add_parser(
        "image", help="build and inspect portable service images",
        description="Build systemd portable service images from [portable.NAME] in the declaration, "
        "and look inside them.")
    # "freshroot image" alone shows this group's help rather than the top-level one.
    image.set_defaults(handler="freshroot.image.handlers:usage", image_parser=image)
    sub = image.add_subparsers(title="commands", metavar="COMMAND", parser_class=ArgumentParser)

    build = add_command(sub, "build", handler="freshroot.image.handlers:build",
                        help="build NAME_VERSION.raw from [portable.NAME]")
    build.add_argument("name", metavar="NAME", help="the image to build ([portable.NAME] in the declaration)")
    add_common(build, root=True, config=True, json=True)
    build.add_argument("--output", "-o", metavar="DIR", default=".",
                       help="directory to write NAME_VERSION.raw to (default: the current directory)")
    build.add_argument("--format", choices=("squashfs", "erofs"),
                       help="file system of the image (default: the declaration's format, else squashfs)")

    inspect = add_command(sub, "inspect", handler="freshroot.image.handlers:inspect",
                          help="show an image's units, os-release and contents (no root needed)")
    inspect.add_argument("image", metavar="IMAGE", help="a .raw squashfs or erofs image")
    add_common(inspect, root=False, config=False, json=True)
