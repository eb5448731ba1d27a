from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshroot.fs.ops import open_root
from tests.fs.helpers import Root


@pytest.fixture
def root(scratch: Path) -> Iterator[Root]:
    """A scratch directory standing for a target root, and an O_PATH fd on it."""
    path = scratch / "root"
    path.mkdir()
    fd = open_root(str(path))
    yield Root(path, fd)
    os.close(fd)
