"""Facts -> compare -> the actions that bring the root to the declaration, and no others.

For each entry (in path order, so an outer mount comes before one inside it) the planner
looks at storage and at the root and decides; docs/persistence.md has the full table.
Parents freshroot creates:

- in storage: the declared ``parent`` owner/mode; for what is not declared, the owner and
  mode of the same directory on the root when it exists there (so /var/lib/private stays
  0700), else impermanence's defaults (root:root 0755; inside a user's home the user's,
  and the home itself 0700);
- on the root: the owner and mode of the same directory in storage (impermanence's rule).

Existing directories are never changed, on either side.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from freshroot.errors import FreshrootError, OperationError, os_error_message
from freshroot.fs import bindmount
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.hints import command
from freshroot.log import logger
from freshroot.persist import facts, image, useropts
from freshroot.persist.actions import (
    BindMount,
    FixPerms,
    MakeDirectory,
    MakeFile,
    MigrateData,
    Refuse,
    RemoveOwnSymlink,
    Symlink,
)
from freshroot.persist.dircache import DirCache
from freshroot.persist.facts import Fact, State
from freshroot.persist.model import ROOT_PARENT, Entry, How, Kind, Migrate, Perms, Persistence, Storage, is_below
from freshroot.plan.action import Action, Context

if TYPE_CHECKING:
    from freshroot.persist.migrate import Comparison

Owner = tuple[int, int, int]  # uid, gid, mode


def migrate_hint(e: Entry) -> str:
    return f"run `{command('migrate', e.path)}` to move it into storage, or set migrate = \"move\" for this entry"


def storage_problem(ctx: Context, s: Storage) -> str | None:
    """Why storage ``s`` cannot be used now, or None."""
    try:
        found = chase(s.path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE)
    except FileNotFoundError:
        return "does not exist (is its file system mounted?)"
    except NotADirectoryError:
        return "a parent of it is not a directory"
    with found:
        if not stat.S_ISDIR(found.st.st_mode):
            return f"is not a directory but {facts.kind_name(found.st)}"
        if s.require_mount:
            with chase(found.path, root_fd=ctx.root_fd, flags=ChaseFlags.PARENT) as parent:
                if not bindmount.is_mount_root(found.fd, parent.fd) and found.path != "/":
                    return "is not mounted (declared require-mount = true), so writing there would write to the root"
    return None


@dataclass
class Planner:
    """Plans the persisted paths of one declaration against the live root and storage."""
    ctx: Context
    actions: list[Action] = field(default_factory=list)
    refusals: list[Action] = field(default_factory=list)
    planned: dict[str, Owner] = field(default_factory=dict)  # directories this plan creates
    pending: dict[str, str] = field(default_factory=dict)  # target -> source of planned dir binds
    skipped: list[str] = field(default_factory=list)  # storages left out (degraded)
    seen: dict[str, Owner | bool | None] = field(default_factory=dict)  # dir_owner's look-ups
    dirs: DirCache | None = None  # shared by the plan's look-ups and its actions
    # storage directory -> the `parent` an entry directly inside it declares (parse refuses two
    # that differ), so whichever entry creates it, it gets the same owner and mode
    parents: dict[str, Perms] = field(default_factory=dict)

    # --- facts ---------------------------------------------------------------------

    def view(self, path: str) -> str:
        """Where ``path`` on the root will be once the binds planned so far are made."""
        if self.pending:
            for a in reversed(_ancestors(path)):
                source = self.pending.get(a)
                if source is not None:
                    return source + path[len(a):]
        return path

    def dir_owner(self, path: str) -> Owner | bool | None:
        """Owner of the directory ``path`` (root view), planned or existing; None: missing;
        False: something that is not a directory is in the way."""
        if path in self.planned:
            return self.planned[path]
        if path in self.seen:
            return self.seen[path]
        self.seen[path] = found = self._dir_owner(path)
        return found

    def _dir_owner(self, path: str) -> Owner | bool | None:
        try:
            with chase(path, root_fd=self.ctx.root_fd, flags=ChaseFlags.SAFE) as found:
                if not stat.S_ISDIR(found.st.st_mode):
                    return False
                st = found.st
                return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return None

    # --- parents -------------------------------------------------------------------

    def parent_default(self, e: Entry, root_path: str) -> Owner:
        uid = e.perms.uid if e.perms.uid is not None else 0
        gid = e.perms.gid if e.perms.gid is not None else 0
        if e.home is not None and root_path == e.home:
            default = Perms(uid, gid, 0o700)
        elif e.home is not None and is_below(root_path, e.home):
            default = Perms(uid, gid, 0o755)
        else:
            default = ROOT_PARENT
        on_root = self.dir_owner(self.view(root_path))
        if isinstance(on_root, tuple):
            default = Perms(*on_root)
        # `parent` is the entry's own parent's (impermanence's parentDirectory); the parents
        # above it, which other entries may share, get the storage's alone.
        own = e.parent if root_path == e.path.rsplit("/", 1)[0] else e.ancestors
        declared = self.parents.get(e.storage.rstrip("/") + root_path, own)
        return declared.with_defaults(default).effective(Kind.DIRECTORY)

    def storage_parents(self, e: Entry) -> bool:
        base = e.storage.rstrip("/")
        for a in [p for p in _ancestors(e.source) if is_below(p, e.storage)]:
            owner = self.dir_owner(a)
            if owner is False:
                self.refuse(e, f"{self.ctx.display(a)} is in the way in storage: it is not a directory")
                return False
            if owner is None:
                perms = self.parent_default(e, a[len(base):])
                self.mkdir(a, perms, "storage directory")
        return True

    def root_parents(self, e: Entry) -> bool:
        base = e.storage.rstrip("/")
        for r in _ancestors(e.path):
            owner = self.dir_owner(self.view(r))
            if owner is False:
                self.refuse(e, f"{self.ctx.display(r)} is not a directory")
                return False
            if owner is None:
                in_storage = self.dir_owner(base + r)
                perms = in_storage if isinstance(in_storage, tuple) else self.parent_default(e, r)
                self.mkdir(r, perms, "directory")
        return True

    def mkdir(self, path: str, owner: Owner, why: str) -> None:
        self.planned[path] = owner
        self.actions.append(MakeDirectory(path, *owner, why=why, dirs=self.dirs))

    def refuse(self, e: Entry, reason: str) -> None:
        self.refusals.append(Refuse(e.path, reason))

    # --- entries -------------------------------------------------------------------

    def source_owner(self, e: Entry, target: Fact) -> Owner:
        """Owner and mode a new storage entry gets: declared, else the root's, else defaults."""
        existing = target.perms() if target.state in (State.EMPTY, State.DATA) else None
        base = Perms(*existing) if existing else Perms()
        return e.perms.with_defaults(base).effective(e.kind)

    def drift(self, e: Entry, source: Fact) -> None:
        have = source.perms()
        if have is None or not self.ctx.fix:
            return
        want = e.perms.with_defaults(Perms(*have)).effective(e.kind)
        if want != have:
            self.actions.append(FixPerms(e.source, *want, old=have))

    def entry(self, e: Entry) -> None:
        source, target = facts.look_entry(self.ctx.root_fd, e, self.dirs)
        if self.view(e.path) != e.path:  # inside a directory this plan is about to bind
            target = facts.look(self.ctx.root_fd, self.view(e.path), e.kind, source=source, source_path=e.source,
                                dirs=self.dirs)
        shown_source = self.ctx.display(e.source)
        if source.state is State.WRONG_TYPE:
            return self.refuse(e, f"{shown_source} in storage is {facts.kind_name(source.st)}, "
                                  f"not a {e.kind.value}")
        if source.state is State.BLOCKED:
            return self.refuse(e, f"a parent of {shown_source} in storage is not a directory")
        how = self.how(e, source, target)
        match target.state:
            case State.OURS_MOUNT if how is not How.SYMLINK:
                if lacking := useropts.missing(self.ctx, e):
                    self.actions.append(useropts.RecordUserOptions(e.path, e.source, lacking, dirs=self.dirs))
                return self.drift(e, source)
            case State.OURS_LINK if how is How.SYMLINK:
                return self.drift(e, source)
            case State.OURS_LINK:
                self.actions.append(RemoveOwnSymlink(e.path, e.source))
                target = Fact(State.MISSING)
            case State.OURS_MOUNT:
                return self.refuse(e, f"is bind-mounted from {shown_source}, but declared as a symlink; "
                                      f"unmount it (`{command('undo')}`) to switch")
            case State.MOUNT_OTHER:
                return self.refuse(e, "something else is mounted there; freshroot will not hide it under "
                                      "another mount (unmount it first)")
            case State.LINK_DANGLING | State.LINK_ELSEWHERE:
                dangling = " (which does not exist)" if target.state is State.LINK_DANGLING else ""
                return self.refuse(e, f"is a symlink to {target.link}{dangling}; freshroot replaces only what "
                                      "it made: remove the symlink, then apply again")
            case State.WRONG_TYPE:
                return self.refuse(e, f"is {facts.kind_name(target.st)}, not a {e.kind.value}")
            case State.BLOCKED:
                return self.refuse(e, "a parent of it is not a directory")
            case State.DATA if image.is_image_content(self.ctx, e.path):
                return self.hide_image(e, source, target, how)
            case State.DATA:
                if not self.plan_migration(e, source, target, how):
                    return None
                # From here storage holds the data; with move the root keeps an empty entry.
                source = Fact(State.DATA, None, None, e.source)
                if e.migrate is Migrate.MOVE:
                    target = Fact(State.EMPTY, target.st)
            case State.MISSING | State.EMPTY:
                pass
        if not source.exists and not target.exists and not e.create and how is not How.SYMLINK:
            return None  # nothing to persist yet (create = false): the next apply migrates it
        if not source.exists and not self.storage_parents(e):
            return None
        if not source.exists and target.state is not State.DATA:
            owner = self.source_owner(e, target)
            if e.kind is Kind.DIRECTORY:
                self.mkdir(e.source, owner, "storage directory")
            elif how is How.BIND:
                self.actions.append(MakeFile(e.source, *owner, why="file in storage", dirs=self.dirs))
        elif source.exists:
            self.drift(e, source)
        if how is How.SYMLINK:
            if not self.root_parents(e):
                return None
            empty = target.perms() if target.state is State.EMPTY else None
            self.actions.append(Symlink(e.path, e.source, replaces_empty=empty, dirs=self.dirs))
            return None
        if target.state is State.MISSING:
            if not self.root_parents(e):
                return None
            owner = source.perms() or self.planned.get(e.source) or self.source_owner(e, target)
            if e.kind is Kind.DIRECTORY:
                self.mkdir(e.path, owner, "mount point")
            else:
                self.actions.append(MakeFile(e.path, *owner, why="mount point", dirs=self.dirs))
        self.actions.append(BindMount(e.source, e.path, e.kind, e.options, dirs=self.dirs))
        if e.kind is Kind.DIRECTORY:
            self.pending[e.path] = e.source
        return None

    def hide_image(self, e: Entry, source: Fact, target: Fact, how: How) -> None:
        """The root holds the image's content at ``e.path`` (persist/image.py): storage goes
        over it, seeded from it when storage has nothing yet (a directory: also when empty).
        The same at boot and in apply."""
        if not source.exists:
            if not self.storage_parents(e):
                return
            owner = self.source_owner(e, target)
            if e.kind is Kind.DIRECTORY:
                self.mkdir(e.source, owner, "storage directory")
            self.actions.append(image.SeedFromImage(e.path, e.source, e.kind, owner, dirs=self.dirs))
        else:
            self.drift(e, source)
            if e.kind is Kind.DIRECTORY and source.state is State.EMPTY:  # e.g. made by install
                self.actions.append(image.SeedFromImage(e.path, e.source, e.kind, dirs=self.dirs))
        self.actions.append(image.HideImageContent(e.path, unlink=how is How.SYMLINK))
        if how is How.SYMLINK:
            self.actions.append(Symlink(e.path, e.source, dirs=self.dirs))
            return
        self.actions.append(BindMount(e.source, e.path, e.kind, e.options, dirs=self.dirs))
        if e.kind is Kind.DIRECTORY:
            self.pending[e.path] = e.source

    def safe_entry(self, e: Entry) -> None:
        """Plan ``e``; a path that cannot be looked at safely refuses this entry, not the plan."""
        try:
            self.entry(e)
        except FreshrootError as error:
            self.refuse(e, error.message)
        except OSError as error:
            self.refuse(e, os_error_message(error))

    def how(self, e: Entry, source: Fact, target: Fact) -> How:
        if e.kind is Kind.DIRECTORY:
            return How.BIND
        if e.how is not How.AUTO:
            return e.how
        if target.state is State.OURS_LINK:
            return How.SYMLINK
        if source.exists or target.state in (State.OURS_MOUNT, State.DATA):
            return How.BIND
        return How.SYMLINK

    def plan_migration(self, e: Entry, source: Fact, target: Fact, how: How) -> bool:
        shown, shown_source = self.ctx.display(e.path), self.ctx.display(e.source)
        found = self.compare(e) if source.state is State.DATA else None
        if e.migrate is Migrate.NO:
            if found is not None and found.contained and how is not How.SYMLINK:
                # Everything the root holds there is in storage already (`migrate --copy`
                # made it so): the mount hides a copy, and nothing is lost.
                return True
            if found is not None:
                self.refuse(e, f"both {shown} and {shown_source} hold data; freshroot will not hide one under "
                               f"the other{_differ(found, shown)}: compare them, keep one, then apply again")
            else:
                self.refuse(e, f"holds data and {shown_source} in storage is empty; {migrate_hint(e)}")
            return False
        if found is not None and found.conflicts:
            self.refuse(e, f"both {shown} and {shown_source} hold data, and they differ{_differ(found, shown)}; "
                           "freshroot will not choose between them: compare them, keep one, then apply again")
            return False
        if e.migrate is Migrate.COPY and how is How.SYMLINK:
            self.refuse(e, "migrate = \"copy\" keeps the root's copy, which a symlink cannot sit on; "
                           "use migrate = \"move\" or how = \"bind\"")
            return False
        if not source.exists and not self.storage_parents(e):
            return False
        self.actions.append(MigrateData(e.path, e.source, e.kind, e.migrate))
        # The copy keeps the root's owner and mode; what is declared applies to the storage
        # entry this creates, as it would to one created empty.
        have = target.perms()
        if have is not None and source.state is not State.DATA:
            want = e.perms.with_defaults(Perms(*have)).effective(e.kind)
            if want != have:
                self.actions.append(FixPerms(e.source, *want, old=have))
        return True


    def compare(self, e: Entry) -> Comparison:
        """The root's copy against storage's, when both hold data: the same (`migrate --copy`,
        or an interrupted migration), storage lacking some of it, or different."""
        # Only for user data on the root (never at an ordinary boot): the migration code, the
        # tree copy and walk are not loaded by every activation.
        from freshroot.persist.migrate import Comparison, compare

        try:
            return compare(self.ctx, e.path, e.source)
        except OSError as error:
            return Comparison((f": {os_error_message(error)}",), ())


def _differ(found: Comparison, shown: str) -> str:
    if found.conflicts:
        return f" ({shown}{found.conflicts[0]})"
    if found.missing:
        return f" (storage lacks {shown}{found.missing[0]})"
    return ""


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def plan(p: Persistence, ctx: Context) -> list[Action]:
    """The actions to apply, refusals last (so everything that can be done is done)."""
    planner = Planner(ctx, dirs=DirCache(ctx.root_fd))
    entries: list[Entry] = []
    for s in p.storages:
        problem = storage_problem(ctx, s)
        if problem is None:
            entries += s.entries
            continue
        message = f"storage {ctx.display(s.path)} {problem}"
        if not s.degraded:
            raise OperationError(message, location=s.location,
                                 hint="mount it, or set degraded = true on it to go on without it")
        logger.warning("%s; degraded = true: its %d entries are left alone", message, len(s.entries))
        planner.skipped.append(s.path)
    planner.parents = declared_parents(entries)
    for e in sorted(entries, key=lambda e: e.path):
        planner.safe_entry(e)
    return planner.actions + planner.refusals


def declared_parents(entries: list[Entry]) -> dict[str, Perms]:
    """Storage directory -> the `parent` declared by the entries directly inside it."""
    return {e.source.rsplit("/", 1)[0]: e.parent for e in entries if e.parent != e.ancestors}


def entry_actions(p: Persistence, ctx: Context, e: Entry) -> list[Action]:
    """The plan for one entry alone (for status)."""
    planner = Planner(ctx)
    planner.safe_entry(e)
    return planner.actions + planner.refusals
