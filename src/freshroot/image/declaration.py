"""Reading the declaration for ``freshroot image``, until freshroot.config.load is on main.

When ``freshroot.config.load.load_declaration`` exists it is used. Otherwise each --config
file is read with tomllib into a Table, with a small line scanner supplying the file:line
of table headers, keys and (one per line) array elements, which is all the portable
section's messages need. Later files override earlier ones image by image.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from typing import Any

from freshroot.config.table import KeyPath, Table
from freshroot.errors import ConfigError, Location, OperationError, os_error_message
from freshroot.image.model import PortableImage, parse_portable

DEFAULT_PATHS = ("/etc/freshroot/freshroot.toml",)
_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_HEADER = re.compile(rf"^\s*\[(\[)?\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*\]")
_ASSIGN = re.compile(rf"^\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*=\s*(.*)$")
_ELEMENT = re.compile(r"""^\s*["'{\[]""")


def _split_key(text: str) -> list[str]:
    return [k.strip().strip("\"'") for k in re.findall(_KEY, text)]


def scan_positions(text: str, file: str) -> dict[KeyPath, Location]:
    """file:line of headers, keys and multi-line array elements (a best-effort scanner)."""
    out: dict[KeyPath, Location] = {}
    table: tuple[str | int, ...] = ()
    array_counts: dict[tuple[str | int, ...], int] = {}
    in_array: tuple[str | int, ...] | None = None
    index = 0
    for n, line in enumerate(text.splitlines(), start=1):
        loc = Location(file, n)
        if in_array is not None:
            stripped = line.split("#", 1)[0].strip()
            if stripped.startswith("]"):
                in_array = None
                continue
            if _ELEMENT.match(line):
                out.setdefault((*in_array, index), loc)
                index += 1
            continue
        if m := _HEADER.match(line):
            path = tuple(_split_key(m.group(2)))
            if m.group(1):  # [[array.of.tables]]
                i = array_counts.get(path, 0)
                array_counts[path] = i + 1
                table = (*path, i)
            else:
                table = path
            out.setdefault(table, loc)
            continue
        if m := _ASSIGN.match(line):
            key = (*table, *_split_key(m.group(1)))
            out.setdefault(key, loc)
            value = m.group(2).split("#", 1)[0].strip()
            if value.startswith("[") and value.count("[") > value.count("]"):
                in_array, index = key, 0
    return out


def read_declaration(path: str) -> Table:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OperationError(f"cannot read the declaration: {os_error_message(e)}") from e
    text = data.decode("utf-8", "surrogateescape")
    try:
        parsed: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = getattr(e, "lineno", None)
        raise ConfigError(f"not valid TOML: {e}", location=Location(path, line)) from e
    path = os.path.abspath(path)  # relative unit paths are relative to this file
    return Table(parsed, (), path, scan_positions(text, path))


def _config_loader() -> Callable[[int, Sequence[str]], Table] | None:
    try:
        module = importlib.import_module("freshroot.config.load")
    except ImportError:
        return None
    loader: Callable[[int, Sequence[str]], Table] | None = getattr(module, "load_declaration", None)
    return loader


def load_images(paths: Sequence[str] | None, root: str = "/") -> dict[str, PortableImage]:
    """Every [portable.*] image the declaration holds."""
    loader = _config_loader()
    if loader is not None:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return parse_portable(loader(fd, list(paths or ())))
        finally:
            os.close(fd)
    images: dict[str, PortableImage] = {}
    for path in paths or DEFAULT_PATHS:
        images.update(parse_portable(read_declaration(path)))
    return images
