"""POSIX ACLs: the setfacl/getfacl text form, and the kernel's xattr binary form.

No libacl: the kernel stores an ACL as the ``system.posix_acl_access`` (or ``_default``)
extended attribute, a little-endian header (version 2) followed by 8-byte entries
(u16 tag, u16 permissions, u32 id). Names in the text form are resolved through the
*target root's* accounts, never the host's.

The text grammar is what systemd-tmpfiles' ``a``/``A`` lines accept (its parse_acl, which
hands the entries to libacl's acl_from_text): the argument is split at commas (empty parts
dropped), each part must have three ``:``-separated fields, or four with a ``default:``/``d:``
prefix; an ``X`` in the permissions makes the entry conditional (it applies with ``x`` to
directories and files that already have an execute bit, and is returned separately as
``access_exec``). The joined entries are then read as libacl reads them: blanks around the
tag, a ``#`` comment to the end, tags as a word or its first letter (``u``, ``user``), a
qualifier that is a number (strtol base 0, a negative one taken modulo 65536) or a name,
permissions of at most three characters from ``rwx-`` without repeats; an entry named twice is
kept twice (the kernel takes two entries for one named user or group).
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from freshroot.errors import ConfigError, Location
from freshroot.fs.accounts import Accounts

ACCESS_XATTR = "system.posix_acl_access"
DEFAULT_XATTR = "system.posix_acl_default"
_VERSION = 2
_UNDEFINED_ID = 0xFFFFFFFF
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")

READ, WRITE, EXECUTE = 4, 2, 1


class Tag(enum.IntEnum):
    """ACL entry tags, valued and ordered as the kernel wants them."""

    USER_OBJ = 0x01
    USER = 0x02
    GROUP_OBJ = 0x04
    GROUP = 0x08
    MASK = 0x10
    OTHER = 0x20


_TAG_NAMES = {
    "u": Tag.USER, "user": Tag.USER, "g": Tag.GROUP, "group": Tag.GROUP,
    "m": Tag.MASK, "mask": Tag.MASK, "o": Tag.OTHER, "other": Tag.OTHER,
}
_TEXT = {Tag.USER_OBJ: "user", Tag.USER: "user", Tag.GROUP_OBJ: "group", Tag.GROUP: "group",
         Tag.MASK: "mask", Tag.OTHER: "other"}
_GROUP_CLASS = (Tag.USER, Tag.GROUP_OBJ, Tag.GROUP)  # the entries the mask limits


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    """One entry of a POSIX ACL."""
    tag: Tag
    qualifier: int | None  # uid for USER, gid for GROUP, None otherwise
    perm: int  # READ | WRITE | EXECUTE

    @property
    def key(self) -> tuple[Tag, int | None]:
        return (self.tag, self.qualifier)


def perm_text(perm: int) -> str:
    return ("r" if perm & READ else "-") + ("w" if perm & WRITE else "-") + ("x" if perm & EXECUTE else "-")


@dataclass(frozen=True, slots=True)
class Acl:
    """An access or default ACL: entries sorted as the kernel stores them, one per key."""

    entries: tuple[Entry, ...]

    @classmethod
    def of(cls, entries: list[Entry] | tuple[Entry, ...]) -> Acl:
        """Sort; a later entry with the same tag and qualifier replaces an earlier one."""
        by_key = {e.key: e for e in entries}
        return cls(tuple(sorted(by_key.values(), key=lambda e: (e.tag, e.qualifier or 0))))

    @classmethod
    def sorted(cls, entries: list[Entry] | tuple[Entry, ...]) -> Acl:
        """Sort as libacl does before writing, keeping entries that name the same user or
        group twice in the order they came (acl_from_text keeps both)."""
        return cls(tuple(sorted(entries, key=lambda e: (e.tag, e.qualifier or 0))))

    @classmethod
    def from_mode(cls, mode: int) -> Acl:
        """The minimal ACL equivalent to permission bits ``mode``."""
        return cls((Entry(Tag.USER_OBJ, None, (mode >> 6) & 7), Entry(Tag.GROUP_OBJ, None, (mode >> 3) & 7),
                    Entry(Tag.OTHER, None, mode & 7)))

    def get(self, tag: Tag, qualifier: int | None = None) -> Entry | None:
        return next((e for e in self.entries if e.key == (tag, qualifier)), None)

    def is_minimal(self) -> bool:
        return all(e.tag in (Tag.USER_OBJ, Tag.GROUP_OBJ, Tag.OTHER) for e in self.entries)

    def merged(self, new: Acl) -> Acl:
        """``new``'s entries replace or extend this one's (setfacl -m; systemd's acls_for_file)."""
        return Acl.of([*self.entries, *new.entries])

    def with_mask_if_needed(self) -> Acl:
        """As setfacl and systemd: with no mask but named entries, add the union of the group class."""
        if self.get(Tag.MASK) is not None or not any(e.tag in (Tag.USER, Tag.GROUP) for e in self.entries):
            return self
        perm = 0
        for e in self.entries:
            if e.tag in _GROUP_CLASS:
                perm |= e.perm
        return Acl.sorted([*self.entries, Entry(Tag.MASK, None, perm)])

    def with_base(self, mode: int) -> Acl:
        """Fill in a missing user::, group:: or other:: entry from ``mode`` (add_base_acls_if_needed)."""
        missing = [e for e in Acl.from_mode(mode).entries if self.get(e.tag) is None]
        return Acl.sorted([*self.entries, *missing]) if missing else self

    def validate(self) -> None:
        """Raise ValueError unless the kernel would accept this ACL."""
        for tag in (Tag.USER_OBJ, Tag.GROUP_OBJ, Tag.OTHER):
            if self.get(tag) is None:
                raise ValueError(f"the ACL has no {_TEXT[tag]}:: entry")
        if not self.is_minimal() and self.get(Tag.MASK) is None:
            raise ValueError("the ACL has named entries but no mask:: entry")

    def encode(self) -> bytes:
        """The xattr value the kernel expects (entries sorted; ids of object entries undefined)."""
        body = [
            _ENTRY.pack(e.tag, e.perm & 7, _UNDEFINED_ID if e.qualifier is None else e.qualifier)
            for e in Acl.sorted(self.entries).entries
        ]
        return _HEADER.pack(_VERSION) + b"".join(body)

    @classmethod
    def decode(cls, data: bytes) -> Acl:
        if len(data) < _HEADER.size or (len(data) - _HEADER.size) % _ENTRY.size:
            raise ValueError(f"not a POSIX ACL xattr value ({len(data)} bytes)")
        (version,) = _HEADER.unpack_from(data)
        if version != _VERSION:
            raise ValueError(f"unknown POSIX ACL xattr version {version}")
        entries = []
        for tag, perm, ident in _ENTRY.iter_unpack(data[_HEADER.size:]):
            t = Tag(tag)
            entries.append(Entry(t, ident if t in (Tag.USER, Tag.GROUP) else None, perm & 7))
        return cls(tuple(entries))

    def to_text(self, accounts: Accounts | None = None, *, default: bool = False, sep: str = ",",
                abbreviate: bool = False) -> str:
        """getfacl's long form (``user:alice:r-x``); names from ``accounts``, else numeric ids.
        ``abbreviate``: the tags as one letter (``u:alice:r-x``), as libacl's TEXT_ABBREVIATE."""
        prefix = ("d:" if abbreviate else "default:") if default else ""
        out = []
        for e in self.entries:
            qualifier = ""
            if e.qualifier is not None:
                found = None
                if accounts is not None:
                    found = accounts.user(e.qualifier) if e.tag == Tag.USER else accounts.group(e.qualifier)
                qualifier = found.name if found is not None else str(e.qualifier)
            tag = _TEXT[e.tag][0] if abbreviate else _TEXT[e.tag]
            out.append(f"{prefix}{tag}:{qualifier}:{perm_text(e.perm)}")
        return sep.join(out)


@dataclass(frozen=True, slots=True)
class AclSpec:
    """A parsed ``a``/``A`` argument: each part None when the text had no such entries."""

    access: Acl | None
    access_exec: Acl | None  # entries written with X: apply to directories and executables only
    default: Acl | None


def _fail(text: str, why: str, location: Location | None) -> ConfigError:
    return ConfigError(f"invalid ACL {text!r}: {why}", location=location,
                       hint="entries look like u:NAME:rwx, g::r-x, m::rwx, o::---, d:u:NAME:rwx")


_WS = " \t\n\r"
_OCTAL = re.compile(r"\\([0-7]{3})")


class _RefusedError(Exception):
    pass


def _split_escaped(text: str, sep: str, *, coalesce: bool) -> list[str]:
    """strv_split_full(EXTRACT_RETAIN_ESCAPE): split at ``sep``, a backslash keeping itself
    and the next character (never a separator); with ``coalesce``, empty parts are dropped."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                raise _RefusedError("a trailing backslash")
            cur.append(text[i:i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return [p for p in parts if p] if coalesce else parts


def _skip_ws(text: str, i: int) -> int:
    """libacl's SKIP_WS: blanks, then a '#' comment up to the end of the line."""
    while i < len(text) and text[i] in _WS:
        i += 1
    if i < len(text) and text[i] == "#":
        while i < len(text) and text[i] != "\n":
            i += 1
    return i


def _skip_tag(text: str, i: int, word: str) -> int:
    """skip_tag_name(): the tag as a word or its first letter, blanks, then ':' (taken) or
    ',' or the end (left)."""
    i += len(word) if text.startswith(word, i) else 1
    i = _skip_ws(text, i)
    if i < len(text) and text[i] == ":":
        return i + 1
    if i >= len(text) or text[i] == ",":
        return i
    raise _RefusedError(f"no ':' after the tag {word!r}")


def _unquote(token: str) -> str:
    """__acl_unquote(): a backslash and three octal digits stand for that character."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), token)


def _strtol_id(token: str) -> int | None:
    """get_id(): C strtol base 0 over the whole token (leading blanks and a sign allowed),
    negative values modulo 65536, stored in 32 bits."""
    t = token.lstrip(" \t\n\r\f\v")
    sign = 1
    if t[:1] in "+-" and t:
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    if t[:2] in ("0x", "0X") and len(t) > 2:
        digits, base = t[2:], 16
    elif t.startswith("0"):
        digits, base = t, 8
    else:
        digits, base = t, 10
    allowed = "0123456789abcdefABCDEF"[:base if base <= 10 else 22]
    if not digits or any(c not in allowed for c in digits):
        return None
    value = sign * int(digits, base)
    value = max(-(1 << 63), min(value, (1 << 63) - 1))  # strtol saturates at LONG_MIN/LONG_MAX
    if value < 0:
        value &= 0xFFFF
    return value & 0xFFFFFFFF


def _from_text(text: str, accounts: Accounts) -> list[Entry]:
    """libacl's acl_from_text: the entries in the order written."""
    entries: list[Entry] = []
    i = 0
    n = len(text)
    while True:
        i = _skip_ws(text, i)
        if i >= n:
            return entries
        c = text[i]
        qualifier: int | None = None
        if c in "ug":
            word = "user" if c == "u" else "group"
            i = _skip_tag(text, i, word)
            end = i
            while end < n and text[end] not in "\r\n:,":
                end += 1
            token = text[i:end]
            i = end + 1 if end < n and text[end] == ":" else end
            if token:
                name = _unquote(token)
                qualifier = _strtol_id(name)
                if qualifier is None:
                    found = accounts.user(name) if c == "u" else accounts.group(name)
                    if found is None:
                        raise _RefusedError(f"no {word} {name!r} in the target root's accounts")
                    qualifier = found.uid if c == "u" else found.gid  # type: ignore[union-attr]
                tag = Tag.USER if c == "u" else Tag.GROUP
            else:
                tag = Tag.USER_OBJ if c == "u" else Tag.GROUP_OBJ
        elif c in "om":
            i = _skip_tag(text, i, "other" if c == "o" else "mask")
            i = _skip_ws(text, i)
            if i < n and text[i] == ":":
                i += 1
            tag = Tag.OTHER if c == "o" else Tag.MASK
        else:
            raise _RefusedError(f"unknown entry type at {text[i:]!r}")
        perm = 0
        for count in range(3):
            ch = text[i] if i < n else ""
            bit = {"r": READ, "w": WRITE, "x": EXECUTE}.get(ch)
            if bit is not None:
                if perm & bit:
                    raise _RefusedError(f"{ch!r} twice in the permissions")
                perm |= bit
            elif ch != "-":
                if count == 0:
                    raise _RefusedError("no permissions")
                break
            i += 1
        entries.append(Entry(tag, qualifier, perm))
        i = _skip_ws(text, i)
        if i < n and text[i] == ",":
            i += 1


def parse(text: str, accounts: Accounts, *, want_mask: bool = True, location: Location | None = None) -> AclSpec:
    """Parse an ACL text as systemd-tmpfiles does (parse_acl, then libacl's acl_from_text
    for the access, conditional and default entries, each joined with commas).

    With ``want_mask`` (an ``a`` line that replaces the ACL) the access and default ACLs get
    a mask computed as setfacl does when they have named entries and no explicit mask; an
    ``a+`` line passes False and computes it after merging with the file's ACL.
    """
    access: list[str] = []
    exec_: list[str] = []
    default: list[str] = []
    try:
        if not text:  # (tmpfiles refuses an a/A line without argument before it gets here)
            raise _RefusedError("no entries")
        for part in _split_escaped(text, ",", coalesce=True):
            fields = _split_escaped(part, ":", coalesce=False)
            if len(fields) not in (3, 4):
                raise _RefusedError(f"{part!r}: an entry has the form TYPE:QUALIFIER:PERMS")
            fields[-1] = fields[-1].replace("X", "x")
            if len(fields) == 4:
                if fields[0] not in ("d", "default"):
                    raise _RefusedError(f"{part!r}: four fields need a 'default:' or 'd:' prefix")
                default.append(":".join(fields[1:]))
            else:
                joined = ":".join(fields)
                (access if joined == part else exec_).append(joined)

        def build(entries: list[str], *, mask: bool) -> Acl | None:
            if not entries:
                return None
            acl = Acl.sorted(_from_text(",".join(entries), accounts))
            return acl.with_mask_if_needed() if mask else acl

        return AclSpec(build(access, mask=want_mask), build(exec_, mask=False), build(default, mask=want_mask))
    except _RefusedError as e:
        raise _fail(text, str(e), location) from None


def get_fd(fd: int, *, default: bool = False) -> Acl | None:
    """The ACL of what ``fd`` refers to, or None if it has none (only its mode)."""
    from freshroot.fs import xattr

    data = xattr.get_fd(fd, DEFAULT_XATTR if default else ACCESS_XATTR)
    return None if data is None else Acl.decode(data)


def set_fd(fd: int, acl: Acl, *, default: bool = False) -> None:
    """Set the access (or default) ACL; the kernel updates the mode bits from an access ACL."""
    from freshroot.fs import xattr

    acl.validate()
    xattr.set_fd(fd, DEFAULT_XATTR if default else ACCESS_XATTR, acl.encode())


def remove_default_fd(fd: int) -> bool:
    from freshroot.fs import xattr

    return xattr.remove_fd(fd, DEFAULT_XATTR)
