"""Storage parents do not depend on order (issue 15 #5): an entry's `parent` is its own parent
directory's, as impermanence's parentDirectory; the parents above it, which other entries may
share, get the storage's `parent` (or the root's owner/mode, or the defaults)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freshroot.errors import DeclarationError
from freshroot.persist.actions import MakeDirectory
from tests.persist.helpers import declaration, make_root, setup


def _made(tmp_path: Path, keys: str) -> dict[str, int]:
    root = make_root(tmp_path)
    text = (f'[persist."/persist"]\ndirectories = ["/var/log"]\n'
            f'files = [{{ path = "/var/{keys}/secret_file", parent = {{ mode = "0700" }} }}]\n')
    a = setup(root, text)
    try:
        return {x.path: x.mode for x in a.plan() if isinstance(x, MakeDirectory)}
    finally:
        os.close(a.fd)


@pytest.mark.parametrize("keys", ["keys", "zkeys", "a"])
def test_a_shared_parent_gets_the_same_mode_whichever_entry_sorts_first(tmp_path: Path, keys: str) -> None:
    """Before: /persist/var was 0700 when /var/keys sorted before /var/log, 0755 after."""
    made = _made(tmp_path, keys)
    assert made["/persist/var"] == 0o755
    assert made[f"/persist/var/{keys}"] == 0o700  # the entry's own parent
    assert made[f"/var/{keys}"] == 0o700  # the root's copies the storage's


def test_two_entries_in_one_directory_declaring_different_parents_are_refused() -> None:
    from freshroot.persist.parse import check

    text = ('[persist."/persist"]\nfiles = [\n  { path = "/var/keys/a", parent = { mode = "0700" } },\n'
            '  { path = "/var/keys/b", parent = { mode = "0750" } },\n  "/var/keys/c",\n]\n')
    with pytest.raises(DeclarationError, match="declared differently"):
        check(declaration(text))
