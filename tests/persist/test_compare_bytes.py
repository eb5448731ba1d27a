"""migrate_walk's byte comparison: chunked reads up to the size both fstats gave."""

from __future__ import annotations

import os
from pathlib import Path

from freshroot.persist.migrate_walk import _CHUNK, _same_bytes


def _fds(tmp_path: Path, a: bytes, b: bytes) -> tuple[int, int]:
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    return os.open(tmp_path / "a", os.O_RDONLY), os.open(tmp_path / "b", os.O_RDONLY)


def test_same_and_different_bytes_across_chunks(tmp_path: Path) -> None:
    data = os.urandom(3 * _CHUNK + 17)
    changed = bytearray(data)
    changed[-1] ^= 1  # the last byte of the last, short chunk
    for other, same in ((data, True), (bytes(changed), False)):
        a, b = _fds(tmp_path, data, other)
        try:
            assert _same_bytes(a, b, len(data)) is same
        finally:
            os.close(a)
            os.close(b)


def test_a_file_shorter_than_its_size_differs(tmp_path: Path) -> None:
    """Truncated after its fstat (both shorter alike too): never 'the same'."""
    data = os.urandom(_CHUNK + 5)
    a, b = _fds(tmp_path, data, data)
    try:
        os.truncate(tmp_path / "b", _CHUNK)
        assert _same_bytes(a, b, len(data)) is False
        os.truncate(tmp_path / "a", _CHUNK)
        assert _same_bytes(a, b, len(data)) is False
        assert _same_bytes(a, b, _CHUNK) is True
    finally:
        os.close(a)
        os.close(b)


def test_empty_files_are_the_same(tmp_path: Path) -> None:
    a, b = _fds(tmp_path, b"", b"")
    try:
        assert _same_bytes(a, b, 0) is True
    finally:
        os.close(a)
        os.close(b)
