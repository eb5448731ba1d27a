"""[etc] symlinks go through the one atomic replacement of freshroot.fs.atomic (issue 13)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freshroot.fs import atomic
from freshroot.fs.ops import open_root

from .helpers import apply, make_root, write_decl


def test_a_long_name_is_linked(tmp_path: Path) -> None:
    """Before: etc's own copy of the replacement put '.#NAME.' and 12 hex digits around the
    name, with no NAME_MAX guard: a 245-byte name failed with ENAMETOOLONG."""
    name = "n" * 245
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, f'[etc."{name}"]\nsource = "/usr/share/x"\nmode = "symlink"\n')
    report = apply(root, decl)
    assert report.ok, report.render()
    assert os.readlink(root / "etc" / name) == "/usr/share/x"
    assert [p.name for p in (root / "etc").iterdir() if p.name.startswith(".#")] == []


def test_a_failed_replacement_leaves_no_temporary_link(tmp_path: Path) -> None:
    """A rename that fails (a non-empty directory took the name meanwhile) removes the
    temporary symlink (etc's copy left it behind)."""
    (tmp_path / "d/in-the-way").mkdir(parents=True)
    (tmp_path / "d/in-the-way/file").write_text("")
    fd = open_root(str(tmp_path / "d"))
    try:
        with pytest.raises(OSError, match=r"Is a directory|Directory not empty"):
            atomic.replace_symlink_at(fd, "in-the-way", "/target")
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path / "d")) == ["in-the-way"]
