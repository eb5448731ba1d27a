"""The top-level sections of the declaration, and who parses each.

One table, so that ``freshroot config check`` can refuse a misspelt section and run every
section parser there is. A parser is named as ``"module:function"`` (imported only when
checking) and takes the whole merged declaration as a :class:`~freshroot.config.table.Table`;
it raises ConfigError on the first problem. A section whose parser is not written yet is
``None``: its syntax is checked, its meaning not yet.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from freshroot.config.table import Table


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    doc: str  # the page that describes it, under docs/
    summary: str
    parser: str | None = None  # "module:function", function(Table) -> model


# The activation plan parses all of these together (and orders them): one check for each.
_PLAN = "freshroot.activation.plan:check"

SECTIONS: tuple[Section, ...] = (
    Section("persist", "persistence.md", "directories and files kept across boots",
            "freshroot.persist.parse:check"),
    Section("activation", "activation.md", "snippets run to bring the machine up", _PLAN),
    Section("etc", "activation.md", "files written or linked into /etc", _PLAN),
    Section("users", "activation.md", "users (passwd, shadow, home directories)", _PLAN),
    Section("groups", "activation.md", "groups (group, gshadow)", _PLAN),
    Section("environment", "activation.md", "/bin/sh and /usr/bin/env", _PLAN),
    Section("portable", "images.md", "portable service images", "freshroot.image.model:parse_portable"),
    Section("tmpfiles", "tmpfiles.md", "tmpfiles.d rules applied at boot",
            "freshroot.tmpfiles.declaration:check_declaration"),
    Section("root", "root-wipe.md", "how the root is wiped at every boot", "freshroot.root.model:check"),
)
BY_NAME = {s.name: s for s in SECTIONS}


def parser_of(section: Section) -> Callable[[Table], Any] | None:
    if section.parser is None:
        return None
    module, _, function = section.parser.partition(":")
    parse: Callable[[Table], Any] = getattr(importlib.import_module(module), function)
    return parse


def check_sections(table: Table) -> dict[str, str]:
    """Refuse unknown top-level keys, run each section's parser; the state of each section."""
    states: dict[str, str] = {}
    for name in table:
        section = BY_NAME.get(name)
        if section is None:
            known = ", ".join(s.name for s in SECTIONS)
            raise table.error(f"unknown section {table.name(name)}", name, hint=f"the sections are: {known}")
        parse = parser_of(section)
        if parse is None:
            states[name] = "syntax checked (no parser for this section yet)"
        else:
            parse(table)
            states[name] = "valid"
    return states
