"""The ``freshroot image`` subcommands: thin glue from arguments to build and inspect."""

from __future__ import annotations

import argparse
import sys

from freshroot.errors import ConfigError, Location
from freshroot.output import print_json


def build(args: argparse.Namespace) -> int:
    # Each subcommand imports only what it uses: inspect needs no ELF reader, build no listing parser.
    from freshroot.image.build import build_image
    from freshroot.image.declaration import load_images
    from freshroot.image.model import ImageFormat

    images = load_images(args.config, args.root)
    image = images.get(args.name)
    if image is None:
        where = ", ".join(args.config or ["the declaration"])
        known = ", ".join(sorted(images)) or "none"
        raise ConfigError(f"no [portable.{args.name}] in the declaration (images declared: {known})",
                          location=Location(where), hint="add a [portable.NAME] table, or pass --config FILE")
    if args.format is not None:
        image = image.with_format(ImageFormat(args.format))
    from freshroot.progress import for_command

    path = build_image(image, args.output, progress=for_command(json=args.json))
    if args.json:
        print_json({"image": image.name, "image_version": image.version, "format": str(image.format),
                    "path": path})
    else:
        sys.stdout.write(path + "\n")
    return 0


def inspect(args: argparse.Namespace) -> int:
    from freshroot.image.inspect import format_text, inspect_image

    info = inspect_image(args.image)
    if args.json:
        print_json(info.to_json())
    else:
        sys.stdout.write(format_text(info))
    return 0

