"""Named bundles of common state a storage can ``include``; each is a TOML file beside this one."""

from __future__ import annotations

import tomllib
from importlib import resources

from freshroot.config.table import Table


def names() -> list[str]:
    return sorted(f.name.removesuffix(".toml") for f in resources.files(__package__).iterdir()
                  if f.name.endswith(".toml"))


def load(name: str) -> Table | None:
    """The preset ``name`` as a Table (errors in it name the preset), or None if unknown."""
    if name not in names():
        return None
    text = resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return Table(tomllib.loads(text), (), f"preset {name}", {})
