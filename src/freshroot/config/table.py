"""A TOML table whose every value knows the file and line it came from.

tomllib gives values but no positions; :mod:`freshroot.config.positions` finds them, and
:class:`Table` carries both, so a section parser anywhere in freshroot can say
``freshroot.toml:12: mode must be octal`` with one call. Section parsers take a Table, read
keys through the typed getters (which raise ConfigError naming the line), and call
:meth:`Table.reject_unknown` with the keys they understand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from freshroot.errors import ConfigError, Location

T = TypeVar("T")

# A key path: table names and keys as strings, array indices as ints.
KeyPath = tuple[str | int, ...]

_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", list: "an array",
               dict: "a table", float: "a number"}


def _quoted(key: str) -> str:
    """A TOML basic string of ``key``: control characters escaped, so a message stays one line."""
    out = key.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in out) + '"'


@dataclass(frozen=True)
class Table:
    """One table of the declaration.

    ``data`` is what tomllib produced for this table and ``path`` is where it sits.
    ``positions`` maps absolute key paths (from the document root) to where they were
    written; when several files are merged, each key keeps the file that set it.
    ``file`` names the declaration as a whole, for values with no position of their own.
    """

    data: Mapping[str, Any]
    path: KeyPath = ()
    file: str = "<declaration>"
    positions: Mapping[KeyPath, Location] = field(default_factory=dict)

    def location(self, *keys: str | int) -> Location:
        """The file:line of ``keys`` below this table (or of the table itself).

        An element with no position of its own gets its nearest enclosing key's.
        """
        full = (*self.path, *keys)
        for n in range(len(full), -1, -1):
            found = self.positions.get(full[:n])
            if found is not None:
                return found
        return Location(self.file)

    def error(self, message: str, *keys: str | int, hint: str | None = None) -> ConfigError:
        return ConfigError(message, location=self.location(*keys), hint=hint)

    def name(self, *keys: str | int) -> str:
        """The dotted TOML name of a key, for messages: persist."/persist".directories[2]."""
        out = ""
        for k in (*self.path, *keys):
            if isinstance(k, int):
                out += f"[{k}]"
            else:
                part = k if k.replace("-", "").replace("_", "").isalnum() and k.isascii() else _quoted(k)
                out += f".{part}" if out else part
        return out

    # --- reading ---------------------------------------------------------------------

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def keys(self) -> list[str]:
        return list(self.data)

    def raw(self, key: str) -> Any:  # TOML values are dynamically typed
        return self.data[key]

    def _typed(self, key: str, kind: type[T], default: T | None, *, required: bool) -> T | None:
        if key not in self.data:
            if required:
                raise self.error(f"{self.name(key)} is required")
            return default
        value = self.data[key]
        # bool is an int in Python; TOML keeps them apart, and so do we.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(
                f"{self.name(key)} must be {_TYPE_NAMES.get(kind, kind.__name__)}, "
                f"not {_TYPE_NAMES.get(type(value), type(value).__name__)}", key,
            )
        return value

    def get_str(self, key: str, default: str | None = None) -> str | None:
        return self._typed(key, str, default, required=False)

    def req_str(self, key: str) -> str:
        value = self._typed(key, str, None, required=True)
        assert value is not None
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        value = self._typed(key, bool, default, required=False)
        assert value is not None
        return value

    def get_int(self, key: str, default: int | None = None) -> int | None:
        return self._typed(key, int, default, required=False)

    def get_list(self, key: str) -> list[Any]:
        value = self._typed(key, list, [], required=False)
        assert value is not None
        return value

    def get_str_list(self, key: str) -> list[str]:
        items = self.get_list(key)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(f"{self.name(key, i)} must be a string", key, i)
        return items

    def get_table(self, key: str) -> Table:
        """The sub-table ``key`` (empty if absent)."""
        value = self._typed(key, dict, {}, required=False)
        assert value is not None
        return self.sub(key, value)

    def sub(self, key: str | int, value: Mapping[str, Any]) -> Table:
        """A Table for ``value`` found at ``key`` below this one (a table or an array element)."""
        return Table(value, (*self.path, key), self.file, self.positions)

    def tables(self) -> Iterator[tuple[str, Table]]:
        """Each key whose value is a table, as (key, Table); other values are an error."""
        for key, value in self.data.items():
            if not isinstance(value, dict):
                raise self.error(f"{self.name(key)} must be a table", key)
            yield key, self.sub(key, value)

    def reject_unknown(self, allowed: set[str] | frozenset[str]) -> None:
        """Refuse keys a parser does not know: a typo must not be silently ignored."""
        for key in self.data:
            if key not in allowed:
                from freshroot.config.hints import suggest  # difflib: only when there is a typo

                known = ", ".join(sorted(allowed))
                better = suggest(key, allowed)
                hint = f"known keys here: {known}" if better is None else f"{better} (known keys here: {known})"
                raise self.error(f"unknown key {self.name(key)}", key, hint=hint)
