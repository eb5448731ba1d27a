"""Expanding a glob line's path against the target root, safely.

glob(3) as systemd calls it (GLOB_BRACE, no GLOB_PERIOD), but every directory is reached
with chase(SAFE) below the root fd, so neither `..` nor a symlink leaves the root and no
symlink an unprivileged user planted is followed. The matched paths come back as written
(not symlink-resolved), sorted.
"""

from __future__ import annotations

import os
import re
import stat

from freshroot.errors import UnsafePathError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import reopen
from freshroot.tmpfiles.globs import (
    _component_regex,
    byte_chars,
    expand_braces,
    has_magic,
    is_glob,
    unescape_literal,
)


def expand(root_fd: int, pattern: str, *, safe: bool = True) -> list[str]:
    """Every existing path below ``root_fd`` that ``pattern`` matches. With ``safe=False``
    (the create phase, whose actions chase each match with SAFE themselves and report an
    unsafe one as systemd does) matches are not filtered by the safe-transition rule."""
    found: set[str] = set()
    flags = ChaseFlags.SAFE if safe else ChaseFlags.NONE
    for variant in expand_braces(pattern):
        components = [c for c in variant.split("/") if c]
        # glob(3) takes the directory part up to the first component with magic as written
        # (backslashes removed); from there on every component is matched with fnmatch().
        literal = next((k for k, c in enumerate(components[:-1]) if has_magic(c)), max(len(components) - 1, 0))
        prefix = "".join(f"/{unescape_literal(c)}" for c in components[:literal])
        found.update(_walk(root_fd, prefix, components[literal:], flags))
    return sorted(found)


def _exists(root_fd: int, path: str, flags: ChaseFlags = ChaseFlags.SAFE) -> bool:
    try:
        with chase(path, root_fd=root_fd, flags=flags | ChaseFlags.NOFOLLOW):
            return True
    except (OSError, UnsafePathError):
        return False


def _list(root_fd: int, directory: str, flags: ChaseFlags = ChaseFlags.SAFE) -> list[str]:
    # systemd's glob opens directories with opendir_nomod(), i.e. O_NOFOLLOW: a directory
    # reached through a symlink in its last component is not listed (the glob matches nothing
    # there); symlinks earlier in the path are followed.
    try:
        with chase(directory or "/", root_fd=root_fd, flags=flags | ChaseFlags.NOFOLLOW) as found:
            if stat.S_ISLNK(found.st.st_mode):
                return []
            fd = reopen(found.fd, os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, UnsafePathError):
        return []
    try:
        return os.listdir(fd)
    except OSError:
        return []
    finally:
        os.close(fd)


def _walk(root_fd: int, prefix: str, components: list[str], flags: ChaseFlags) -> list[str]:
    if not components:
        return [prefix or "/"] if _exists(root_fd, prefix or "/", flags) else []
    head, rest = components[0], components[1:]
    if not is_glob(head):
        return _walk(root_fd, f"{prefix}/{head}", rest, flags)
    regex = re.compile(_component_regex(head) + r"\Z", re.DOTALL)
    out: list[str] = []
    for name in _list(root_fd, prefix, flags):
        if regex.match(byte_chars(name)):
            out.extend(_walk(root_fd, f"{prefix}/{name}", rest, flags))
    return out
