"""Named bundles of common state a storage can ``include``; each is a TOML file beside this one."""

from __future__ import annotations

import os
import tomllib

from freshroot.config.table import Table


def names() -> list[str]:
    from importlib import resources  # ~7 ms of start-up (zipfile, pathlib...): only to list them

    return sorted(f.name.removesuffix(".toml") for f in resources.files(__package__).iterdir()
                  if f.name.endswith(".toml"))


def load(name: str) -> Table | None:
    """The preset ``name`` as a Table (errors in it name the preset), or None if unknown.

    Read through the package's loader, as importlib.resources would (a zipapp's too), but
    without importing it: every boot's activation reads the presets a storage includes."""
    if not name or "/" in name or "\x00" in name or name.startswith("."):
        return None
    loader = __spec__.loader
    get_data = getattr(loader, "get_data", None)
    if get_data is None:
        return None if name not in names() else _from_resources(name)
    try:
        data: bytes = get_data(os.path.join(os.path.dirname(__file__), f"{name}.toml"))
    except (OSError, ValueError):  # ValueError: a name the file system cannot hold
        return None
    return Table(tomllib.loads(data.decode("utf-8")), (), f"preset {name}", {})


def _from_resources(name: str) -> Table:
    from importlib import resources

    text = resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return Table(tomllib.loads(text), (), f"preset {name}", {})
