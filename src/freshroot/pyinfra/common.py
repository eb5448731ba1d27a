"""What the facts and operations share: where the declaration is staged on a host, its
digest, and the freshroot command line there."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from freshroot.digest import sha256
from freshroot.generations.store import digest

# On the host, below its root: the fleet's declaration, uploaded here and applied with
# --config. Root's alone (0700), files 0600: a declaration may hold secrets.
STAGE = "/var/lib/freshroot/fleet"


@dataclass(frozen=True)
class Part:
    """One declaration file a pyinfra deploy uploads."""
    local: str  # the file on the controller
    name: str  # its name in the stage directory: "00-common.toml", in merge order
    sha256: str
    data: bytes


def parts(paths: Sequence[str]) -> list[Part]:
    """The declaration's files in merge order, named so that ``--config DIR`` reads them in it."""
    out: list[Part] = []
    for i, path in enumerate(paths):
        with open(path, "rb") as f:
            data = f.read()
        base = os.path.basename(path)
        name = f"{i:02d}-{base if base.endswith('.toml') else base + '.toml'}"
        out.append(Part(path, name, sha256(data).hexdigest(), data))
    return out


def declaration_digest(declaration: Sequence[Part]) -> str:
    """What freshroot on the host computes for the same files (a generation's digest)."""
    return digest([p.data for p in declaration])


def declared_sections(declaration: Sequence[Part]) -> set[str]:
    """The top-level sections the files declare (read on the controller: which install
    phases the host runs). A file that is no TOML declares nothing here; freshroot on the
    host names its line."""
    import tomllib

    found: set[str] = set()
    for p in declaration:
        try:
            found.update(tomllib.loads(p.data.decode("utf-8")))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
    return found


def command(freshroot: str, *args: str) -> str:
    """A freshroot command line: ``freshroot`` is shell words (``freshroot``, or
    ``python3 /root/freshroot.pyz``); the arguments are quoted."""
    return " ".join([freshroot, *(shlex.quote(a) for a in args)])
