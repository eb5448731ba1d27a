"""What a tmpfiles.d line means once parsed: frozen values the create/remove/clean phases act on.

This mirrors systemd's ``Item`` and ``ItemArray`` (src/tmpfiles/tmpfiles.c): one ``Item`` per
accepted line, grouped per path into an ``ItemGroup`` (systemd's ItemArray); a ``Config`` holds the
groups for plain paths and for glob paths, each in the order their path was first seen, which is
the order systemd processes them in (plain paths before globs).

Everything here is already resolved: specifiers expanded, the path normalised (and *not* prefixed
with --root: ``path`` is always relative to the target root, '/'-rooted), users and groups turned
into numbers, the age into microseconds, base64 and credentials decoded into ``binary``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

from freshroot.errors import Location

USEC_PER_SEC = 1_000_000
USEC_INFINITY = (1 << 64) - 1  # systemd's USEC_INFINITY: an age of "infinity"


class ItemType(enum.StrEnum):
    """Every line type, by systemd's letter. The '+' of f+, w+, p+, L+, c+, b+, C+, a+ is not part
    of the type: it is ``Item.plus`` (systemd's append_or_force)."""

    # These take file names.
    CREATE_FILE = "f"
    TRUNCATE_FILE = "F"  # legacy, same as f+; kept distinct because systemd orders items by letter
    CREATE_DIRECTORY = "d"
    TRUNCATE_DIRECTORY = "D"
    CREATE_SUBVOLUME = "v"
    CREATE_SUBVOLUME_INHERIT_QUOTA = "q"
    CREATE_SUBVOLUME_NEW_QUOTA = "Q"
    CREATE_FIFO = "p"
    CREATE_SYMLINK = "L"
    CREATE_CHAR_DEVICE = "c"
    CREATE_BLOCK_DEVICE = "b"
    COPY_FILES = "C"
    # These take globs.
    WRITE_FILE = "w"
    EMPTY_DIRECTORY = "e"
    SET_XATTR = "t"
    RECURSIVE_SET_XATTR = "T"
    SET_ACL = "a"
    RECURSIVE_SET_ACL = "A"
    SET_ATTRIBUTE = "h"
    RECURSIVE_SET_ATTRIBUTE = "H"
    SET_CAPABILITY = "k"
    RECURSIVE_SET_CAPABILITY = "K"
    IGNORE_PATH = "x"
    IGNORE_DIRECTORY_PATH = "X"
    REMOVE_PATH = "r"
    RECURSIVE_REMOVE_PATH = "R"
    RELABEL_PATH = "z"
    RECURSIVE_RELABEL_PATH = "Z"
    ADJUST_MODE = "m"  # legacy, same as z

    @property
    def canonical(self) -> ItemType:
        """The type this one is an alias of (F -> f, m -> z); F also implies ``plus``."""
        if self is ItemType.TRUNCATE_FILE:
            return ItemType.CREATE_FILE
        if self is ItemType.ADJUST_MODE:
            return ItemType.RELABEL_PATH
        return self

    @property
    def takes_glob(self) -> bool:
        """Whether the path is a glob (systemd's needs_glob)."""
        return self in _GLOB_TYPES

    @property
    def takes_ownership(self) -> bool:
        """Whether the line creates or owns the node (systemd's takes_ownership): such items sort
        first within their path and must agree with each other, or the later line is dropped."""
        return self in _OWNING_TYPES

    @property
    def purgeable(self) -> bool:
        """Whether ``--purge`` and the ``$`` modifier apply (systemd's needs_purge)."""
        return self in _PURGE_TYPES

    @property
    def is_directory(self) -> bool:
        """Types whose default mode is 0755 rather than 0644."""
        return self in _DIRECTORY_TYPES


_GLOB_TYPES = frozenset({
    ItemType.WRITE_FILE, ItemType.EMPTY_DIRECTORY, ItemType.SET_XATTR, ItemType.RECURSIVE_SET_XATTR,
    ItemType.SET_ACL, ItemType.RECURSIVE_SET_ACL, ItemType.SET_ATTRIBUTE, ItemType.RECURSIVE_SET_ATTRIBUTE,
    ItemType.SET_CAPABILITY, ItemType.RECURSIVE_SET_CAPABILITY,
    ItemType.IGNORE_PATH, ItemType.IGNORE_DIRECTORY_PATH, ItemType.REMOVE_PATH, ItemType.RECURSIVE_REMOVE_PATH,
    ItemType.RELABEL_PATH, ItemType.RECURSIVE_RELABEL_PATH, ItemType.ADJUST_MODE,
})
_OWNING_TYPES = frozenset({
    ItemType.CREATE_FILE, ItemType.TRUNCATE_FILE, ItemType.CREATE_DIRECTORY, ItemType.TRUNCATE_DIRECTORY,
    ItemType.CREATE_SUBVOLUME, ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA, ItemType.CREATE_SUBVOLUME_NEW_QUOTA,
    ItemType.CREATE_FIFO, ItemType.CREATE_SYMLINK, ItemType.CREATE_CHAR_DEVICE, ItemType.CREATE_BLOCK_DEVICE,
    ItemType.COPY_FILES, ItemType.WRITE_FILE, ItemType.EMPTY_DIRECTORY, ItemType.IGNORE_PATH,
    ItemType.IGNORE_DIRECTORY_PATH, ItemType.REMOVE_PATH, ItemType.RECURSIVE_REMOVE_PATH,
})
_PURGE_TYPES = frozenset({
    ItemType.COPY_FILES, ItemType.TRUNCATE_FILE, ItemType.CREATE_FILE, ItemType.WRITE_FILE,
    ItemType.EMPTY_DIRECTORY, ItemType.CREATE_SUBVOLUME, ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA,
    ItemType.CREATE_SUBVOLUME_NEW_QUOTA, ItemType.CREATE_CHAR_DEVICE, ItemType.CREATE_BLOCK_DEVICE,
    ItemType.CREATE_SYMLINK, ItemType.CREATE_FIFO, ItemType.CREATE_DIRECTORY, ItemType.TRUNCATE_DIRECTORY,
})
_DIRECTORY_TYPES = frozenset({
    ItemType.CREATE_DIRECTORY, ItemType.TRUNCATE_DIRECTORY, ItemType.CREATE_SUBVOLUME,
    ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA, ItemType.CREATE_SUBVOLUME_NEW_QUOTA,
})


class AgeBy(enum.IntFlag):
    """Which timestamps count for the age (the letters before ':' in the age field)."""

    ATIME = 1 << 0  # a / A
    BTIME = 1 << 1  # b / B
    CTIME = 1 << 2  # c / C
    MTIME = 1 << 3  # m / M


AGE_BY_DEFAULT_FILE = AgeBy.ATIME | AgeBy.BTIME | AgeBy.CTIME | AgeBy.MTIME
AGE_BY_DEFAULT_DIR = AgeBy.ATIME | AgeBy.BTIME | AgeBy.MTIME


class Modifier(enum.StrEnum):
    """The characters after the type letter, as systemd 262 accepts them."""

    PLUS = "+"  # f+/F truncate, w+ append, p+/L+/c+/b+/C+ replace, a+/A+ append ACLs
    BOOT = "!"  # only with --boot
    ALLOW_FAILURE = "-"  # a failed create does not make the exit status non-zero
    TRY_REPLACE = "="  # replace a node of the wrong type (p, L, c, b, C, d ... with '=')
    BASE64 = "~"  # the argument is base64 encoded
    CREDENTIAL = "^"  # the argument names a credential in $CREDENTIALS_DIRECTORY
    PURGE = "$"  # the line's path is removed by --purge
    IF_EXISTS = "?"  # L?: create the symlink only if its target exists


@dataclass(frozen=True, slots=True)
class Age:
    """The age field: ``[~][age-by:]timespan``."""

    usec: int  # USEC_INFINITY for "infinity"
    by_file: AgeBy = AGE_BY_DEFAULT_FILE
    by_dir: AgeBy = AGE_BY_DEFAULT_DIR
    keep_first_level: bool = False  # '~': the direct children of the path are not aged out


@dataclass(frozen=True, slots=True)
class Mode:
    """The mode field. ``value`` is the parsed octal mode (up to 07777)."""

    value: int
    masked: bool = False  # '~': mask the bits by what exists (drop w/x where the node lacks them)
    only_create: bool = False  # ':': apply only when the node is created, never adjust an existing one


@dataclass(frozen=True, slots=True)
class Owner:
    """A resolved user or group field. ``only_create``: the ':' prefix."""

    id: int
    only_create: bool = False


class Item(NamedTuple):
    """One accepted tmpfiles.d line.

    A NamedTuple rather than a frozen dataclass: equally immutable, and made in a quarter of
    the time (a frozen dataclass sets each of these fields through object.__setattr__), which
    shows when a configuration has thousands of lines. Change one with ``_replace``.
    """

    type: ItemType
    path: str  # absolute, normalised, specifiers expanded; relative to --root (never prefixed with it)
    location: Location
    plus: bool = False  # '+' (systemd's append_or_force); True for the legacy F too
    boot: bool = False  # '!'
    allow_failure: bool = False  # '-'
    try_replace: bool = False  # '='
    base64: bool = False  # '~' (already decoded into ``binary``)
    credential: bool = False  # '^' (already read into ``binary``)
    purge: bool = False  # '$'
    if_exists: bool = False  # '?'
    # The mode actually used: the parsed one, or 0755/0644 by type when the field is '-'.
    mode: int = 0o644
    mode_set: bool = False
    mode_masked: bool = False
    mode_only_create: bool = False
    uid: Owner | None = None
    gid: Owner | None = None
    age: Age | None = None
    # The argument after the path, specifiers expanded and C escapes resolved for f, w, L, C
    # (as systemd does), the credential name for '^'; None when absent or '-'. For C and L the
    # default /usr/share/factory/<path> is filled in here. Like ``path``, a C source is never
    # prefixed with --root here (systemd joins it; the phases resolve it below the root).
    argument: str | None = None
    binary: bytes | None = None  # decoded data for '~' and '^'; when set it wins over argument
    # c/b: (major, minor).
    device: tuple[int, int] | None = None
    # t/T: (name, value) pairs from the argument.
    xattrs: tuple[tuple[str, bytes], ...] = ()
    # h/H: the chattr flags to set and the mask of flags the line talks about.
    attribute_value: int = 0
    attribute_mask: int = 0

    @property
    def content(self) -> bytes | None:
        """What f/w write: the decoded binary argument, else the argument as UTF-8."""
        if self.binary is not None:
            return self.binary
        return None if self.argument is None else self.argument.encode("utf-8", "surrogateescape")

    @property
    def spec(self) -> str:
        """The type with its modifiers, as written in messages (e.g. ``L+``)."""
        mods = "".join(c for c, on in (
            ("+", self.plus and self.type is not ItemType.TRUNCATE_FILE), ("!", self.boot),
            ("-", self.allow_failure), ("=", self.try_replace), ("~", self.base64),
            ("^", self.credential), ("$", self.purge), ("?", self.if_exists),
        ) if on)
        return f"{self.type}{mods}"


@dataclass(frozen=True, slots=True)
class ItemGroup:
    """All items for one path (systemd's ItemArray), sorted as systemd sorts them: owning types
    first, then by type letter. Parent/child links are computed by the phases that need them."""

    path: str
    items: tuple[Item, ...]

    @property
    def is_glob(self) -> bool:
        return any(i.type.takes_glob for i in self.items)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything read, ready to apply: plain paths first, then globs, each in first-seen order."""

    groups: tuple[ItemGroup, ...] = ()
    globs: tuple[ItemGroup, ...] = ()
    # True when at least one line was rejected as bad configuration (exit 65 at the end).
    invalid: bool = False
    # True when reading a file failed (systemd exits with EX_IOERR-ish / the errno; see parse).
    read_failed: bool = False
    notes: tuple[str, ...] = field(default=())

    def all_groups(self) -> tuple[ItemGroup, ...]:
        return self.groups + self.globs
