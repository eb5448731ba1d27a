"""freshroot.digest: CPython's built-in SHA-256, the same digests as hashlib's (OpenSSL)."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from freshroot import digest


@given(st.binary(max_size=4096))
def test_the_same_digests_as_hashlib(data: bytes) -> None:
    assert digest.sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    assert digest.content(data) == "sha256:" + hashlib.sha256(data).hexdigest()


def test_incremental_as_hashlib() -> None:
    h = digest.sha256()
    for part in (b"a", b"", b"bc" * 1000):
        h.update(part)
    assert h.digest() == hashlib.sha256(b"a" + b"bc" * 1000).digest()


def test_not_openssl() -> None:
    """The point of the module: on this interpreter it is the built-in implementation."""
    assert type(digest.sha256()).__module__ in ("_sha2", "_sha256")
