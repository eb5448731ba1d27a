"""Expanding a glob line's path against the target root, safely.

glob(3) as systemd calls it (GLOB_BRACE, no GLOB_PERIOD), but every directory is reached
with chase(SAFE) below the root fd, so neither `..` nor a symlink leaves the root and no
symlink an unprivileged user planted is followed. The matched paths come back as written
(not symlink-resolved), sorted.
"""

from __future__ import annotations

import os
import re

from freshroot.errors import UnsafePathError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import reopen
from freshroot.tmpfiles.globs import _component_regex, expand_braces, is_glob


def expand(root_fd: int, pattern: str) -> list[str]:
    """Every existing path below ``root_fd`` that ``pattern`` matches."""
    found: set[str] = set()
    for variant in expand_braces(pattern):
        components = [c for c in variant.split("/") if c]
        found.update(_walk(root_fd, "", components))
    return sorted(found)


def _exists(root_fd: int, path: str) -> bool:
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW):
            return True
    except (OSError, UnsafePathError):
        return False


def _list(root_fd: int, directory: str) -> list[str]:
    try:
        with chase(directory or "/", root_fd=root_fd, flags=ChaseFlags.SAFE) as found:
            fd = reopen(found.fd, os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, UnsafePathError):
        return []
    try:
        return os.listdir(fd)
    except OSError:
        return []
    finally:
        os.close(fd)


def _walk(root_fd: int, prefix: str, components: list[str]) -> list[str]:
    if not components:
        return [prefix or "/"] if _exists(root_fd, prefix or "/") else []
    head, rest = components[0], components[1:]
    if not is_glob(head):
        literal = re.sub(r"\\(.)", r"\1", head)
        return _walk(root_fd, f"{prefix}/{literal}", rest)
    regex = re.compile(_component_regex(head) + r"\Z", re.DOTALL)
    out: list[str] = []
    for name in _list(root_fd, prefix):
        if regex.match(name):
            out.extend(_walk(root_fd, f"{prefix}/{name}", rest))
    return out
