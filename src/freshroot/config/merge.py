"""Merging declaration files (and presets) into one, keeping each value's file:line.

The rules, as systemd's drop-ins override its main files:

- tables merge recursively, key by key;
- arrays concatenate: ``directories`` from two drop-ins add up. An empty array in a later
  file clears what earlier files put there (as an empty ``Setting=`` resets a list in a
  systemd drop-in), so a drop-in can replace a list: ``x = []`` in one file, new entries in
  a file after it;
- anything else set twice (a scalar, or a value whose type changes): the later one wins.

Positions move with the values: an element appended after three others takes index 3 in its
key path, and a replaced value forgets the positions of what it replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from freshroot.config.positions import LazyPositions
from freshroot.config.table import KeyPath, Table
from freshroot.errors import Location


def _copy(value: Any) -> Any:  # TOML values are dynamically typed
    """A structural copy, so that merging later never mutates a source (a cached preset)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _children(value: Any) -> list[tuple[str | int, Any]]:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        return list(enumerate(value))
    return []


def _copy_positions(
    value: Any, src: KeyPath, dst: KeyPath,
    src_positions: Mapping[KeyPath, Location], dst_positions: dict[KeyPath, Location],
) -> None:
    found = src_positions.get(src)
    if found is not None:
        dst_positions[dst] = found
    for key, child in _children(value):
        _copy_positions(child, (*src, key), (*dst, key), src_positions, dst_positions)


def _drop_positions(value: Any, path: KeyPath, positions: dict[KeyPath, Location]) -> None:
    positions.pop(path, None)
    for key, child in _children(value):
        _drop_positions(child, (*path, key), positions)


def merge_into(
    data: dict[str, Any],
    positions: dict[KeyPath, Location] | None,
    src: Mapping[str, Any],
    src_positions: Mapping[KeyPath, Location],
    *,
    at: KeyPath = (),
    src_at: KeyPath = (),
) -> None:
    """Merge the table ``src`` (whose positions are keyed from ``src_at``) into ``data``.

    ``data`` is the table found at ``at`` in the document ``positions`` belongs to; both are
    updated in place (``positions=None`` merges the values only). For a whole file, ``at``
    and ``src_at`` are both ``()``; a preset can be merged into a sub-table by passing its
    path as ``at``. ``src`` is never modified, nor shared with ``data``.
    """
    for key, value in src.items():
        dst_path, src_path = (*at, key), (*src_at, key)
        old = data.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            # The table keeps where it was first written; its keys say where each came from.
            if positions is not None and dst_path not in positions and src_path in src_positions:
                positions[dst_path] = src_positions[src_path]
            merge_into(old, positions, value, src_positions, at=dst_path, src_at=src_path)
        elif isinstance(old, list) and isinstance(value, list) and value:
            start = len(old)
            old.extend(_copy(value))
            if positions is None:
                continue
            if dst_path not in positions and src_path in src_positions:
                positions[dst_path] = src_positions[src_path]
            for index, element in enumerate(value):
                _copy_positions(element, (*src_path, index), (*dst_path, start + index),
                                src_positions, positions)
        else:
            if positions is not None:
                if key in data:
                    _drop_positions(old, dst_path, positions)
                _copy_positions(value, src_path, dst_path, src_positions, positions)
            data[key] = _copy(value)


def _descend(data: dict[str, Any], at: KeyPath) -> dict[str, Any]:
    """The table at ``at`` in ``data``, made (or made a table) where missing."""
    for key in at:
        if not isinstance(key, str):
            raise TypeError("merge destination paths name tables, not array elements")
        nxt = data.get(key)
        if not isinstance(nxt, dict):
            nxt = data[key] = {}
        data = nxt
    return data


@dataclass(frozen=True, slots=True)
class _Source:
    """One declaration file's table (or a part of it) being merged, with where each key came from."""
    data: Mapping[str, Any]
    positions: Mapping[KeyPath, Location]
    file: str
    at: KeyPath


@dataclass
class Merger:
    """Accumulates documents, later ones over earlier ones; :meth:`table` gives the result.

    Values are merged as documents are added. Positions are worked out only when something
    asks for one (an error, ``config show -v``), by merging the same documents again with
    positions: a declaration without errors never pays for them.
    """

    data: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    _sources: list[_Source] = field(default_factory=list)

    def add(self, data: Mapping[str, Any], positions: Mapping[KeyPath, Location], file: str,
            *, at: KeyPath = ()) -> None:
        """Merge ``data`` (with its ``positions``, keyed from its own root) at ``at``."""
        self.files.append(file)
        self._sources.append(_Source(data, positions, file, at))
        merge_into(_descend(self.data, at), None, data, positions, at=at)

    def positions(self) -> LazyPositions:
        """The positions of the values merged so far (computed on first use)."""
        sources = tuple(self._sources)

        def replay() -> dict[KeyPath, Location]:
            data: dict[str, Any] = {}
            positions: dict[KeyPath, Location] = {}
            for source in sources:
                at = source.at
                for n in range(1, len(at) + 1):
                    positions.setdefault(at[:n], Location(source.file))
                merge_into(_descend(data, at), positions, source.data, source.positions, at=at)
            return positions

        return LazyPositions(replay)

    def table(self) -> Table:
        """The merged declaration; call it after the last :meth:`add`."""
        return Table(self.data, (), self.files[0] if self.files else "<declaration>", self.positions())
