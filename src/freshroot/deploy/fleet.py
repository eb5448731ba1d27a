"""fleet.toml: the hosts of a fleet, their connection and install settings, and the parts of
the declaration each one gets (the common parts first, then its own). Errors name the file
and line, as the declaration's do."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from freshroot.config.parse import parse_bytes
from freshroot.config.table import Table
from freshroot.errors import ConfigError, Location, UsageError

# Keys a host may set, and [fleet] may set for every host.
CONNECTION = frozenset({"user", "port", "key", "known_hosts", "strict_host_keys", "root", "freshroot",
                        "confirm_timeout", "connect_timeout", "parts", "pyz"})
HOST_ONLY = frozenset({"address", "tags", "install"})
INSTALL = frozenset({"root", "machine_id", "host_keys", "copy_self"})


@dataclass(frozen=True)
class Install:
    """A fleet host's `freshroot install` settings."""
    root: str = "/mnt"
    machine_id: str | None = None
    host_keys: str | None = None  # a directory on the host
    copy_self: bool = False


@dataclass(frozen=True)
class Host:
    """One host of a fleet.toml: where to reach it and which declaration parts it gets."""
    name: str
    address: str
    tags: tuple[str, ...]
    parts: tuple[str, ...]  # controller paths, in merge order: [fleet] parts, then the host's
    user: str = "root"
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None
    strict_host_keys: bool = True
    root: str = "/"
    freshroot: str = "freshroot"
    pyz: str | None = None  # where deploy uploads its own freshroot.pyz on the host (then runs it)
    confirm_timeout: int | None = None
    connect_timeout: int = 10
    install: Install = Install()


@dataclass(frozen=True)
class Fleet:
    """A parsed fleet.toml."""
    path: str
    hosts: tuple[Host, ...]

    def select(self, selectors: list[str] | None) -> list[Host]:
        """``--on NAME`` or ``--on @tag`` (may be repeated; several are a union)."""
        if not selectors:
            return list(self.hosts)
        chosen: list[Host] = []
        for selector in selectors:
            if selector.startswith("@"):
                found = [h for h in self.hosts if selector[1:] in h.tags]
            else:
                found = [h for h in self.hosts if h.name == selector]
            if not found:
                names = ", ".join(h.name for h in self.hosts)
                raise UsageError(f"--on {selector}: no such {'tag' if selector.startswith('@') else 'host'} in "
                                 f"{self.path}", hint=f"the hosts are: {names}")
            chosen += [h for h in found if h not in chosen]
        return [h for h in self.hosts if h in chosen]


def _path(base: str, value: str) -> str:
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base, value))


def _settings(table: Table, base: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in ("user", "key", "known_hosts", "root", "freshroot", "pyz"):
        value = table.get_str(key)
        if value is not None:
            out[key] = _path(base, value) if key in ("key", "known_hosts") else value
    for key in ("port", "confirm_timeout", "connect_timeout"):
        number = table.get_int(key)
        if number is not None:
            if number < 0 or (key == "port" and not 0 < number < 65536):
                raise table.error(f"{table.name(key)} = {number}: out of range", key)
            out[key] = (number or None) if key == "confirm_timeout" else number
    if "strict_host_keys" in table:
        out["strict_host_keys"] = table.get_bool("strict_host_keys", default=True)
    for key in ("root", "pyz"):
        if key in out and not str(out[key]).startswith("/"):
            raise table.error(f"{table.name(key)}: must be an absolute path", key)
    return out


def load(path: str) -> Fleet:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read the fleet: {e.strerror}", location=Location(path)) from None
    table = parse_bytes(raw, path).table()
    table.reject_unknown({"fleet", "hosts"})
    base = os.path.dirname(os.path.abspath(path))
    common = table.get_table("fleet") if "fleet" in table else None
    defaults: dict[str, object] = {}
    common_parts: list[str] = []
    if common is not None:
        common.reject_unknown(CONNECTION)
        defaults = _settings(common, base)
        common_parts = [_path(base, p) for p in common.get_str_list("parts")]
    if "hosts" not in table:
        raise table.error("no [hosts.NAME] table: a fleet needs at least one host")
    hosts: list[Host] = []
    for name, host in table.get_table("hosts").tables():
        host.reject_unknown(CONNECTION | HOST_ONLY)
        settings = {**defaults, **_settings(host, base)}
        if settings.get("pyz") and "freshroot" not in settings:
            # The uploaded zipapp is the freshroot that runs there, unless `freshroot` says otherwise.
            settings["freshroot"] = f"python3 -I {shlex.quote(str(settings['pyz']))}"
        install = Install()
        if "install" in host:
            it = host.get_table("install")
            it.reject_unknown(INSTALL)
            root = it.get_str("root", "/mnt") or "/mnt"
            install = Install(root, it.get_str("machine_id"), it.get_str("host_keys"),
                              it.get_bool("copy_self", default=False))
        parts = tuple(common_parts + [_path(base, p) for p in host.get_str_list("parts")])
        if not parts:
            raise host.error(f"{host.name()}: no declaration: give parts here or in [fleet]")
        for part in parts:
            if not os.path.isfile(part):
                keys = ("parts",) if "parts" in host else ()
                raise host.error(f"{host.name()}: declaration part {part} is not a file", *keys)
        hosts.append(Host(name=name, address=host.get_str("address") or name, tags=tuple(host.get_str_list("tags")),
                          parts=parts, install=install, **settings))  # type: ignore[arg-type]
    return Fleet(path, tuple(hosts))
