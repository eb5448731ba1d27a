"""docs/configuration.md and the code agree on the sections and the search directories."""

from __future__ import annotations

import re
from pathlib import Path

from freshroot.config.search import SEARCH_DIRS
from freshroot.features import SECTIONS

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def sections_table() -> str:
    """docs/configuration.md's table of sections, as the feature registry makes it."""
    rows = ["| section | what it declares | described in |", "|---|---|---|"]
    rows += [f"| `{s.heading}` | {s.summary} | [{s.doc}]({s.doc}) |" for s in SECTIONS]
    return "\n".join(rows) + "\n"


def test_every_section_is_documented_with_its_page() -> None:
    text = DOC.read_text()
    table = text[text.index("## The sections"):]
    row = r"^\| `\[([a-z-]+)[.\]].*\[[a-z-]+\.md\]\(([a-z-]+\.md)\) \|$"
    rows = {m[1]: m[2] for m in re.finditer(row, table, re.M)}
    assert rows == {s.name: s.doc for s in SECTIONS}
    assert sections_table() in table, "the table differs from the registry's rows (freshroot.features)"


def test_search_directories_are_documented_in_order() -> None:
    text = DOC.read_text()
    positions = [text.index(f"| `{d}/`") for d in SEARCH_DIRS]
    assert positions == sorted(positions)
