"""The small field parsers of a tmpfiles.d line: mode, uid/gid, device numbers, age-by, chattr
flags, xattrs, credential names, paths. Each follows the systemd function named in its docstring."""

from __future__ import annotations

import posixpath

from freshroot.fs import attrs
from freshroot.tmpfiles.model import AGE_BY_DEFAULT_DIR, AGE_BY_DEFAULT_FILE, AgeBy
from freshroot.tmpfiles.words import WHITESPACE, EscapeError, extract_first_word

_OCT = "01234567"


def parse_mode(text: str) -> int | None:
    """parse_mode(): octal, at most 07777, no sign; leading whitespace is skipped."""
    s = text.lstrip(WHITESPACE)
    if not s or s.lstrip(_OCT):  # something other than octal digits (a sign included)
        return None
    value = int(s, 8)
    return value if value <= 0o7777 else None


def parse_id(text: str) -> int | None:
    """parse_uid()/parse_gid(): decimal, no sign, no leading zero or whitespace; 65535 and
    4294967295 are not valid ids."""
    if not text or not text.isascii() or not text.isdigit() or (text[0] == "0" and len(text) > 1):
        return None
    value = int(text)
    if value >= 0xFFFFFFFF or value == 0xFFFF:
        return None
    return value


def _strtoul0(text: str) -> int | None:
    """safe_atou() with base 0: leading whitespace skipped, no sign, 0x hex, 0 octal."""
    s = text.lstrip(WHITESPACE)
    if not s or s[0] in "+-":
        return None
    try:
        if s[:2].lower() == "0x":
            digits = s[2:]
            value = int(digits, 16) if digits and all(c in "0123456789abcdefABCDEF" for c in digits) else None
        elif s[0] == "0":
            value = int(s, 8) if all(c in _OCT for c in s) else None
        else:
            value = int(s) if s.isascii() and s.isdigit() else None
    except ValueError:
        return None
    if value is None or value > 0xFFFFFFFF:
        return None
    return value


def parse_devnum(text: str) -> tuple[int, int] | None:
    """parse_devnum(): ``major:minor``; major below 4096, minor below 2^20."""
    major_s, sep, minor_s = text.partition(":")
    # The major is the run of decimal digits before the ':' (strspn(DIGITS)), so '0x1:3' is
    # refused; only the minor goes to safe_atou alone (base 0: hex and octal too).
    if not sep or not major_s or not (major_s.isascii() and major_s.isdigit()):
        return None
    major = _strtoul0(major_s)
    minor = _strtoul0(minor_s)
    if major is None or minor is None or major >= 1 << 12 or minor >= 1 << 20:
        return None
    return major, minor


def parse_age_by(text: str) -> tuple[AgeBy, AgeBy] | None:
    """parse_age_by_from_arg(): lower-case letters for files, upper-case for directories."""
    if not text:
        return None
    by_file = AgeBy(0)
    by_dir = AgeBy(0)
    letters = {"a": AgeBy.ATIME, "b": AgeBy.BTIME, "c": AgeBy.CTIME, "m": AgeBy.MTIME}
    for c in text:
        if c in WHITESPACE:
            continue
        if c in letters:
            by_file |= letters[c]
        elif c.lower() in letters and c.isupper():
            by_dir |= letters[c.lower()]
        else:
            return None
    if not by_file and not by_dir:
        return None
    return (by_file or AGE_BY_DEFAULT_FILE), (by_dir or AGE_BY_DEFAULT_DIR)


def parse_attributes(argument: str | None, path: str) -> tuple[int, int]:
    """parse_attribute_from_arg(): ``[+-=]letters`` -> (value, mask). Raises ValueError with
    systemd's message (which names the path, not the line)."""
    p = argument or ""
    mode = "+"
    if p[:1] in ("+", "-", "="):
        mode = p[0]
        p = p[1:]
    if not p and mode != "=":
        raise ValueError(f"Setting file attribute on '{path}' needs an attribute specification.")
    value = 0
    mask = 0
    for c in p:
        flag = attrs.LETTERS.get(c)
        if flag is None:
            raise ValueError(f"Unknown file attribute '{c}' on '{path}'.")
        if mode in "+=":
            value |= flag
        else:
            value &= ~flag
        mask |= flag
    if mode == "=":
        mask |= attrs.ALL
    return value, mask


def parse_xattrs(argument: str) -> tuple[list[tuple[str, str]], list[str]]:
    """parse_xattrs_from_arg(): ``name=value`` words. Returns the pairs and the warnings."""
    pairs: list[tuple[str, str]] = []
    warnings: list[str] = []
    pos: int | None = 0
    while pos is not None:
        try:
            word, pos = extract_first_word(argument, pos)
        except EscapeError as e:
            rest = argument[e.pos or 0:]
            warnings.append(f"Failed to parse extended attribute '{rest}', ignoring: Invalid argument")
            break
        if word is None:
            break
        name, sep, value = word.partition("=")
        if not sep:
            warnings.append(f"Failed to parse extended attribute, ignoring: {word}")
            continue
        if not name or not value:
            warnings.append(f"Malformed extended attribute found, ignoring: {word}")
            continue
        pairs.append((name, value))
    return pairs, warnings


def credential_name_valid(name: str) -> bool:
    """credential_name_valid(): a valid file name (no '/', not '.' or '..') that is also a valid
    fd name (printable ASCII without ':'), at most 255 characters."""
    return (bool(name) and len(name) <= 255 and "/" not in name and name not in (".", "..")
            and all(" " <= c < "\x7f" and c != ":" for c in name))


def simplify_path(path: str) -> str:
    """path_simplify(): collapse '//' and '/./', drop a trailing '/'; '..' stays as written."""
    if "//" not in path and "/." not in path and not path.endswith("/"):
        return path
    absolute = path.startswith("/")
    parts = [p for p in path.split("/") if p and p != "."]
    joined = "/".join(parts)
    if absolute:
        return "/" + joined
    return joined or "."


def join_root(root: str, path: str) -> str:
    """The path as systemd prints it under --root (root joined in front)."""
    if root in ("", "/"):
        return path
    return posixpath.join(root, path.lstrip("/"))


def path_remainder(path: str, prefix: str) -> str | None:
    """path_startswith() as systemd returns it: the rest of ``path`` after the components of
    ``prefix`` and the slashes that follow them ("" for the prefix itself), or None."""
    i = 0
    for comp in (c for c in prefix.split("/") if c):
        while i < len(path) and path[i] == "/":
            i += 1
        if not path.startswith(comp, i) or (i + len(comp) < len(path) and path[i + len(comp)] != "/"):
            return None
        i += len(comp)
    while i < len(path) and path[i] == "/":
        i += 1
    return path[i:]


def path_startswith(path: str, prefix: str) -> bool:
    """path_startswith(): component-wise prefix test, ignoring duplicate slashes."""
    a = [p for p in path.split("/") if p]
    b = [p for p in prefix.split("/") if p]
    return path.startswith("/") == prefix.startswith("/") and a[: len(b)] == b


class Base64Error(ValueError):
    """``str()`` is the strerror() systemd prints for this failure."""


def _b64_value(c: int) -> int:
    if 65 <= c <= 90:
        return c - 65
    if 97 <= c <= 122:
        return c - 97 + 26
    if 48 <= c <= 57:
        return c - 48 + 52
    if c in (43, 45):  # '+' and the URL-safe '-'
        return 62
    if c in (47, 95):  # '/' and the URL-safe '_'
        return 63
    raise Base64Error("Invalid argument")


def unbase64(data: bytes) -> bytes:
    """unbase64mem(): whitespace anywhere is ignored; both alphabets; a group cut short is
    "Broken pipe", a bad character or misplaced padding "Invalid argument", data after the
    padding "File name too long" (the errnos systemd returns)."""
    chars = [c for c in data if c not in b" \t\n\r"]
    pad = -1  # stands for '='
    values = [pad if c == 61 else c for c in chars]
    out = bytearray()
    i = 0
    n = len(values)
    while i < n:
        group = values[i:i + 4]
        decoded = [_b64_value(v) if v != pad else pad for v in group]  # raises on a bad character
        if decoded[0] == pad or (len(decoded) > 1 and decoded[1] == pad):
            raise Base64Error("Invalid argument")
        if len(decoded) < 4:
            raise Base64Error("Broken pipe")
        a, b, c, d = decoded
        if c == pad:
            if d != pad or b & 15:
                raise Base64Error("Invalid argument")
            if i + 4 < n:
                raise Base64Error("File name too long")
            out.append((a << 2 | b >> 4) & 0xFF)
            break
        if d == pad:
            if c & 3:
                raise Base64Error("Invalid argument")
            if i + 4 < n:
                raise Base64Error("File name too long")
            out += bytes(((a << 2 | b >> 4) & 0xFF, (b << 4 | c >> 2) & 0xFF))
            break
        out += bytes(((a << 2 | b >> 4) & 0xFF, (b << 4 | c >> 2) & 0xFF, (c << 6 | d) & 0xFF))
        i += 4
    return bytes(out)
