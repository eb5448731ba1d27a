"""create_item's table of actions (freshroot.tmpfiles.create.CREATE) covers every line type."""

from __future__ import annotations

from freshroot.tmpfiles.create import CREATE
from freshroot.tmpfiles.model import ItemType


def test_every_line_type_has_a_create_action() -> None:
    assert set(CREATE) == set(ItemType)
