"""What a declaration says should persist: storages and their entries, as frozen dataclasses.

Every path here is absolute and canonical, relative to the target root (``/var/log``, never
``/mnt/var/log``); owners are numeric, resolved against the target root's passwd and group
when the declaration is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from freshroot.errors import Location


class Kind(StrEnum):
    DIRECTORY = "directory"
    FILE = "file"


class How(StrEnum):
    """How a file is persisted. ``auto``: bind when storage has the file, else symlink
    (impermanence's rule, so a program creating the file writes it into storage)."""

    BIND = "bind"
    SYMLINK = "symlink"
    AUTO = "auto"


class Migrate(StrEnum):
    """What apply does when the root holds data at a declared path and storage does not."""

    NO = "no"  # stop and say how to migrate (the default: never guess with data)
    MOVE = "move"  # copy into storage durably, then remove it from the root
    COPY = "copy"  # copy into storage durably, leave the root's copy (hidden under the mount)


@dataclass(frozen=True, slots=True)
class Perms:
    """Owner and mode; None means "not declared" (a default is used when creating, and
    ``status`` reports no drift for it)."""

    uid: int | None = None
    gid: int | None = None
    mode: int | None = None

    def with_defaults(self, other: Perms) -> Perms:
        return Perms(
            self.uid if self.uid is not None else other.uid,
            self.gid if self.gid is not None else other.gid,
            self.mode if self.mode is not None else other.mode,
        )

    def effective(self, kind: Kind) -> tuple[int, int, int]:
        default_mode = 0o755 if kind is Kind.DIRECTORY else 0o644
        return (
            0 if self.uid is None else self.uid,
            0 if self.gid is None else self.gid,
            default_mode if self.mode is None else self.mode,
        )

    def describe(self) -> str:
        mode = "-" if self.mode is None else f"{self.mode:04o}"
        uid = "-" if self.uid is None else str(self.uid)
        gid = "-" if self.gid is None else str(self.gid)
        return f"{mode} {uid}:{gid}"


ROOT_PARENT = Perms(0, 0, 0o755)  # impermanence's parentDirectory default

# freshroot's own state files on the root: never user data against a migration or a
# comparison (docs/persistence.md, "freshroot's own files").
# The boot's mark of a root in use stays on the root's own file system: a copy in storage
# would survive the wipe, and moving it off a kept root would make the next boot take the
# root for a fresh one.
ROOT_MARK = "/var/lib/freshroot/root-in-use"
# The users step's remembered ids: when storage has its own copy (the users step writes
# there when the declaration persists the ids directory), that copy is the one in use and
# the root's is a stale one the users step started from.
IDS_PATH = "/var/lib/freshroot/ids/ids.json"


def own_state(path: str) -> dict[str, bool]:
    """freshroot's own state files below ``path`` (relative to it, "/x/y"), each mapped to
    whether it stays on the root whatever storage holds (True) or only while storage lacks
    its own copy (False)."""
    found = {}
    for own, root_only in ((ROOT_MARK, True), (IDS_PATH, False)):
        if is_below(own, path):
            found[own[len(path.rstrip("/")):]] = root_only
    return found


@dataclass(frozen=True, slots=True)
class Entry:
    """One persisted directory or file."""

    kind: Kind
    path: str  # on the root: /var/lib/nixos
    storage: str  # the storage root: /persist
    perms: Perms  # of the entry in storage: used when creating it, checked for drift
    # Declared owner/mode of the entry's own parent directory when freshroot creates it in
    # storage (the entry's `parent`, else the storage's), as impermanence's parentDirectory.
    parent: Perms
    how: How = How.AUTO  # files only
    migrate: Migrate = Migrate.NO
    hide: bool = False  # x-gvfs-hide: file managers do not list the mount
    create: bool = True  # create an empty entry when neither root nor storage has one
    early: bool = False  # needed before the root switch (initrd), for the units renderer
    options: tuple[str, ...] = ()  # mount options
    user: str | None = None  # the users.<name> section it came from
    home: str | None = None  # that user's home, whose parents are root's and below it the user's
    location: Location | None = None
    # For the other parents freshroot creates in storage: the storage's `parent` only, so a
    # directory several entries share gets the same owner/mode whichever entry comes first.
    ancestors: Perms = Perms()

    @property
    def source(self) -> str:
        """Where the entry lives in storage, as a path in the root."""
        return self.storage.rstrip("/") + self.path


@dataclass(frozen=True, slots=True)
class Storage:
    """One storage root (``[persist."/persist"]``) and what it holds."""

    path: str
    entries: tuple[Entry, ...]
    hide_mounts: bool = False
    allow_trash: bool = False
    options: tuple[str, ...] = ()
    early: bool = False
    degraded: bool = False  # a missing storage is a warning, not a failure
    require_mount: bool = False  # declared as its own file system: must be a mount point
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Persistence:
    """The declaration's [persist] sections: the storages and what they persist."""
    storages: tuple[Storage, ...] = ()
    audit_ignore: tuple[str, ...] = ()

    def entries(self) -> tuple[Entry, ...]:
        return tuple(e for s in self.storages for e in s.entries)

    def find(self, path: str) -> Entry | None:
        for e in self.entries():
            if e.path == path:
                return e
        return None


def is_below(path: str, parent: str) -> bool:
    """Whether ``path`` is strictly inside ``parent`` (both canonical, absolute)."""
    return (parent == "/" and path != "/") or path.startswith(parent.rstrip("/") + "/")


def parents(path: str) -> list[str]:
    """The proper ancestors of ``path``, outermost first, without "/": /a/b/c -> [/a, /a/b]."""
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
