"""Unit-name escaping, exactly as systemd does it (src/basic/unit-name.c, systemd-escape).

- :func:`escape` is ``systemd-escape STRING``: '/' becomes '-'; every byte outside
  ``[A-Za-z0-9:_.]`` (and '-' and '\\' themselves) becomes ``\\xNN`` of its UTF-8 byte; a
  leading '.' is escaped too, so no unit name starts with a dot.
- :func:`escape_path` is ``systemd-escape --path PATH``: the path is simplified first
  (repeated slashes collapsed, '.' components dropped, trailing slashes removed), the root
  becomes '-', then the leading '/' is dropped and the rest escaped. A path with a '..'
  component, or one that is not a valid path (a component over 255 bytes, 4096 bytes or
  more), is refused, as systemd refuses it.
- :func:`unescape` and :func:`unescape_path` undo them (``systemd-escape --unescape
  [--path]``).
- :func:`unit_name_from_path` is systemd's unit_name_from_path(): the escaped path plus a
  suffix such as ".mount", with systemd's hashed fallback for names of 256 bytes or more,
  so the name is the one systemd derives itself from a mount unit's Where=.

Strings are handled as bytes (UTF-8, with surrogateescape for bytes that are not UTF-8),
because escaping is defined on bytes: "é" is ``\\xc3\\xa9``.
"""

from __future__ import annotations

import re
import string

from freshroot.errors import FreshrootError
from freshroot.systemd.siphash import siphash24

NAME_MAX = 255  # longest path component
PATH_MAX = 4096  # a valid path is shorter than this
UNIT_NAME_MAX = 256  # a valid unit name is shorter than this
_VALID = frozenset((string.ascii_letters + string.digits + ":_.").encode())
# LONG_UNIT_NAME_HASH_KEY in unit-name.c: the siphash key of hashed long unit names.
_LONG_NAME_KEY = bytes.fromhex("ecf237fb58324a32849f069b0d21eb9a")
_HASH_CHARS = 16
UNIT_TYPES = frozenset(
    {"service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"}
)
_HEX = re.compile(rb"\\x([0-9a-fA-F]{2})")


class EscapeError(FreshrootError):
    """A string systemd refuses to escape or unescape (a '..' path, a bad \\x sequence)."""


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


def _str(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _escape_bytes(data: bytes) -> bytes:
    out = bytearray()
    for i, byte in enumerate(data):
        if byte == 0x2F:  # '/'
            out += b"-"
        elif byte in _VALID and not (i == 0 and byte == 0x2E):  # a leading '.' is escaped
            out.append(byte)
        else:
            out += b"\\x%02x" % byte
    return bytes(out)


def escape(value: str | bytes) -> str:
    """``systemd-escape VALUE``."""
    return _str(_escape_bytes(_bytes(value)))


def _simplify(path: bytes) -> bytes | None:
    """systemd's path_simplify(): collapse slashes, drop '.' components and trailing
    slashes. None when a component is too long (systemd then leaves the path as it is, and
    it fails validation)."""
    absolute = path.startswith(b"/")
    parts = [p for p in path.split(b"/") if p not in (b"", b".")]
    if any(len(p) > NAME_MAX for p in parts):
        return None
    joined = b"/".join(parts)
    if absolute:
        return b"/" + joined
    return joined or b"."


def _is_normalized(path: bytes) -> bool:
    """path_is_normalized() for an already simplified path: valid, no '..', not '.'."""
    if not path or len(path) >= PATH_MAX or path == b".":
        return False
    return all(p != b".." and len(p) <= NAME_MAX for p in path.split(b"/"))


def escape_path(path: str | bytes) -> str:
    """``systemd-escape --path PATH``."""
    data = _bytes(path)
    if not data:
        return "-"  # systemd-escape warns about '' but prints "-"
    simple = _simplify(data)
    if simple == b"/":
        return "-"
    if simple is None or not _is_normalized(simple):
        shown = _str(data)
        raise EscapeError(
            f"{shown!r} is not a normalized file system path (no '..', components under 256 bytes), "
            "so it has no unit name"
        )
    return _str(_escape_bytes(simple.lstrip(b"/")))


def _unescape_bytes(value: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(value):
        byte = value[i]
        if byte == 0x2D:  # '-'
            out += b"/"
            i += 1
        elif byte == 0x5C:  # '\\'
            match = _HEX.match(value, i)
            if match is None:
                raise EscapeError(f"{_str(value)!r}: '\\' must start a \\xNN escape")
            out.append(int(match.group(1), 16))
            i += 4
        else:
            out.append(byte)
            i += 1
    # systemd builds a C string: an escaped NUL ends it there.
    return bytes(out).split(b"\0", 1)[0]


def unescape(value: str | bytes) -> str:
    """``systemd-escape --unescape VALUE``."""
    return _str(_unescape_bytes(_bytes(value)))


def unescape_path(value: str | bytes) -> str:
    """``systemd-escape --unescape --path VALUE``: the path a unit name prefix stands for."""
    data = _bytes(value)
    if data == b"-":
        return "/"
    if not data:
        raise EscapeError("an empty string is not an escaped path")
    raw = _unescape_bytes(data)
    if not raw:
        return "/"  # "\\x00": systemd's C string ends at once, and "/" + "" is the root
    parts = raw.split(b"/")
    if len(raw) + 1 >= PATH_MAX or any(p in (b"", b".", b"..") or len(p) > NAME_MAX for p in parts):
        raise EscapeError(f"{_str(data)!r} does not unescape to a normalized absolute path")
    path = b"/" + raw
    return _str(path)


def _hash_long(name: bytes) -> bytes:
    """unit_name_hash_long(): keep a prefix, append '_' and 16 hex digits of a siphash."""
    suffix = name[name.rindex(b".") :]
    # siphash24_string() hashes the terminating NUL too.
    digest = siphash24(name + b"\0", _LONG_NAME_KEY).to_bytes(8, "little").hex().encode()
    keep = UNIT_NAME_MAX - 1 - (len(suffix) - 1) - _HASH_CHARS - 2
    return name[:keep] + b"_" + digest + suffix


def unit_name_from_path(path: str | bytes, suffix: str) -> str:
    """The unit name systemd gives ``path`` with ``suffix`` (".mount", ".automount", ...)."""
    if not suffix.startswith(".") or suffix[1:] not in UNIT_TYPES:
        raise EscapeError(f"{suffix!r} is not a unit suffix such as '.mount'")
    name = (escape_path(path) + suffix).encode("ascii")
    if len(name) >= UNIT_NAME_MAX:
        name = _hash_long(name)
    return name.decode("ascii")
