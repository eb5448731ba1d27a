"""POSIX ACLs: the setfacl/getfacl text form, and the kernel's xattr binary form.

No libacl: the kernel stores an ACL as the ``system.posix_acl_access`` (or ``_default``)
extended attribute, a little-endian header (version 2) followed by 8-byte entries
(u16 tag, u16 permissions, u32 id). Names in the text form are resolved through the
*target root's* accounts, never the host's.

The text grammar is what systemd-tmpfiles' ``a``/``A`` lines accept (its parse_acl):
comma-separated entries of exactly three fields ``type:qualifier:perms``, or four with a
``default:``/``d:`` prefix; types u[ser], g[roup], m[ask], o[ther]; perms from ``rwx-``;
an ``X`` makes the entry conditional (it applies with ``x`` to directories and files
that already have an execute bit, and is returned separately as ``access_exec``).
"""

from __future__ import annotations

import enum
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
        return Acl.of([*self.entries, Entry(Tag.MASK, None, perm)])

    def with_base(self, mode: int) -> Acl:
        """Fill in a missing user::, group:: or other:: entry from ``mode`` (add_base_acls_if_needed)."""
        missing = [e for e in Acl.from_mode(mode).entries if self.get(e.tag) is None]
        return Acl.of([*self.entries, *missing]) if missing else self

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
            for e in Acl.of(self.entries).entries
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


def _perm(field: str) -> tuple[int, bool] | None:
    perm, cond = 0, False
    for ch in field:
        match ch:
            case "r":
                perm |= READ
            case "w":
                perm |= WRITE
            case "x":
                perm |= EXECUTE
            case "X":
                perm |= EXECUTE
                cond = True
            case "-":
                pass
            case _:
                return None
    return perm, cond


def _qualifier(tag: Tag, name: str, accounts: Accounts) -> int | None:
    if name.isdigit():
        return int(name)
    if tag == Tag.USER:
        user = accounts.user(name)
        return None if user is None else user.uid
    group = accounts.group(name)
    return None if group is None else group.gid


def parse_entry(text: str, accounts: Accounts, location: Location | None = None) -> tuple[bool, bool, Entry]:
    """One entry: (is_default, is_conditional_exec, entry)."""
    fields = text.split(":")
    if len(fields) == 4:
        if fields[0] not in ("d", "default"):
            raise _fail(text, "four fields need a 'default:' or 'd:' prefix", location)
        fields = fields[1:]
        is_default = True
    elif len(fields) == 3:
        is_default = False
    else:
        raise _fail(text, "an entry has the form TYPE:QUALIFIER:PERMS", location)
    kind, name, perms = fields
    tag = _TAG_NAMES.get(kind)
    if tag is None:
        raise _fail(text, f"unknown entry type {kind!r}", location)
    parsed = _perm(perms)
    if parsed is None or not perms:
        raise _fail(text, f"permissions {perms!r} are not made of r, w, x, X and -", location)
    perm, cond = parsed
    qualifier: int | None = None
    if name:
        if tag in (Tag.MASK, Tag.OTHER):
            raise _fail(text, f"{_TEXT[tag]} entries take no name", location)
        qualifier = _qualifier(tag, name, accounts)
        if qualifier is None:
            what = "user" if tag == Tag.USER else "group"
            raise _fail(text, f"no {what} {name!r} in the target root's accounts", location)
    elif tag == Tag.USER:
        tag = Tag.USER_OBJ
    elif tag == Tag.GROUP:
        tag = Tag.GROUP_OBJ
    return is_default, cond, Entry(tag, qualifier, perm)


def parse(text: str, accounts: Accounts, *, want_mask: bool = True, location: Location | None = None) -> AclSpec:
    """Parse an ACL text as systemd-tmpfiles does.

    With ``want_mask`` (an ``a`` line that replaces the ACL) the access and default ACLs get
    a mask computed as setfacl does when they have named entries and no explicit mask; an
    ``a+`` line passes False and computes it after merging with the file's ACL.
    """
    access: list[Entry] = []
    exec_: list[Entry] = []
    default: list[Entry] = []
    for part in text.split(","):
        is_default, cond, entry = parse_entry(part, accounts, location)
        (default if is_default else exec_ if cond else access).append(entry)

    def build(entries: list[Entry], *, mask: bool) -> Acl | None:
        if not entries:
            return None
        acl = Acl.of(entries)
        return acl.with_mask_if_needed() if mask else acl

    return AclSpec(build(access, mask=want_mask), build(exec_, mask=False), build(default, mask=want_mask))


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
