"""The merged declaration back as text: TOML (that tomllib reads back the same) or JSON.

With ``verbose``, every value carries the file:line that set it, as a TOML comment or as a
``locations`` map in JSON, so ``freshroot config show -v`` answers "where does this come from?"
after drop-ins and presets have been merged.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from freshroot.config.table import KeyPath, Table

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(s: str) -> str:
    # JSON's escapes (\" \\ \n \uXXXX ...) are all TOML escapes; TOML also forbids a raw DEL.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(key: str | int) -> str:
    text = str(key)
    return text if _BARE.fullmatch(text) else toml_string(text)


def dotted(path: KeyPath) -> str:
    """A key path as TOML writes it, array indices as [n]: persist."/persist".directories[3]."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + toml_key(key)
    return out


def toml_scalar(value: Any) -> str:  # TOML values are dynamically typed
    match value:
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float():
            if math.isnan(value):
                return "nan"
            if math.isinf(value):
                return "inf" if value > 0 else "-inf"
            return repr(value)
        case str():
            return toml_string(value)
        case datetime.date() | datetime.time():
            return value.isoformat()
        case list():
            return "[" + ", ".join(toml_scalar(v) for v in value) + "]"
        case dict():
            if not value:
                return "{}"
            return "{ " + ", ".join(f"{toml_key(k)} = {toml_scalar(v)}" for k, v in value.items()) + " }"
        case _:
            raise TypeError(f"not a TOML value: {value!r}")


class _Writer:
    def __init__(self, table: Table, verbose: bool) -> None:
        self.table = table
        self.verbose = verbose
        self.lines: list[str] = []

    def note(self, text: str, path: KeyPath) -> str:
        if not self.verbose:
            return text
        return f"{text}  # {self.table.location(*path)}"

    def value(self, key: str, value: Any, path: KeyPath) -> None:
        if isinstance(value, list) and value:
            self.lines.append(self.note(f"{toml_key(key)} = [", path))
            for index, element in enumerate(value):
                self.lines.append(self.note(f"  {toml_scalar(element)},", (*path, index)))
            self.lines.append("]")
        else:
            self.lines.append(self.note(f"{toml_key(key)} = {toml_scalar(value)}", path))

    def table_body(self, data: Mapping[str, Any], path: KeyPath) -> None:
        plain = [(k, v) for k, v in data.items() if not isinstance(v, dict)]
        tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
        # A table with only sub-tables needs no header of its own (TOML makes it implicitly).
        if path and (plain or not tables):
            if self.lines:
                self.lines.append("")
            self.lines.append(self.note(f"[{dotted(path)}]", path))
        for key, value in plain:
            self.value(key, value, (*path, key))
        for key, value in tables:
            self.table_body(value, (*path, key))


def to_toml(table: Table, *, verbose: bool = False) -> str:
    writer = _Writer(table, verbose)
    writer.table_body(table.data, table.path)
    return "\n".join(writer.lines) + ("\n" if writer.lines else "")


def _json_default(value: Any) -> str:
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _walk(value: Any, path: KeyPath) -> list[KeyPath]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _walk(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _walk(child, (*path, index))
    return found


def to_json(table: Table, files: tuple[str, ...], masked: tuple[str, ...], *, verbose: bool = False
            ) -> dict[str, Any]:
    """``config show --json``'s document (TOML dates and times as ISO 8601 strings)."""
    document: dict[str, Any] = {"files": list(files), "masked": list(masked),
                                "declaration": json.loads(json.dumps(table.data, default=_json_default))}
    if verbose:
        document["locations"] = {dotted(p): str(table.location(*p)) for p in _walk(table.data, ())}
    return document
