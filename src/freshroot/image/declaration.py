"""The declaration's portable images, read through freshroot.config.load."""

from __future__ import annotations

import os
from collections.abc import Sequence

from freshroot.compose import load_checked
from freshroot.config.table import Table
from freshroot.fs import ops
from freshroot.image.model import PortableImage, parse_portable


def load_table(paths: Sequence[str] | None, root: str = "/") -> Table:
    root_fd = ops.open_root(root)
    try:
        return load_checked(root_fd, paths, root=root)
    finally:
        os.close(root_fd)


def load_images(paths: Sequence[str] | None, root: str = "/") -> dict[str, PortableImage]:
    """Every [portable.*] image of the declaration below ``root`` (or of the --config ``paths``)."""
    return parse_portable(load_table(paths, root))
