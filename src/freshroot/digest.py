"""SHA-256 for freshroot's records, manifests and generations, without loading OpenSSL.

``import hashlib`` loads ``_hashlib`` and with it libcrypto (several MB, thousands of
relocations) whatever digest is asked for. The boot activation digests the /etc files it
writes and the records it keeps, so it paid for libcrypto at every boot: about 50 ms of a
warm start in the test VM, more when the library is still on disk (issue 19).
CPython's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before) gives the same digests and is
built into the interpreter on Debian and Fedora; where it is not, hashlib is used.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import _Hash


def _builtin() -> Callable[..., _Hash]:
    for name in ("_sha2", "_sha256"):
        try:
            constructor: Callable[..., _Hash] = __import__(name).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    from hashlib import sha256 as fallback

    return fallback


sha256 = _builtin()


def content(data: bytes) -> str:
    """``sha256:<hex>``: how freshroot names a file's content in its records and manifests."""
    return "sha256:" + sha256(data).hexdigest()
