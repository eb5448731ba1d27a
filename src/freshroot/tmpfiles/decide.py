"""What the create and remove phases would change, decided before anything changes: the
decisions ``freshroot plan`` lists, one entry per line that would change something, in the
order the engine would process the lines.

The phases are walked exactly as freshroot.tmpfiles.executor runs them (systemd's order:
remove before create, plain paths before globs, a configured parent before its child on
create, children first on remove, each line once per operation), with ``Context.visit`` set:
instead of acting, each line is compared with what is there. What an earlier line would make
or remove is remembered (``Decider.overlay``), so a later line is judged against the root as
the engine would find it: ``d /a 0755`` then ``z /a 0700`` are two changes, a file below a
directory this plan creates is a creation.

The rule is exactness in both directions: a line with no decision would change nothing if the
engine ran it, and a line with decisions makes them when it runs. Where the engine cannot be
known to change nothing, the line is listed, saying why:

- ``w`` writes its content at every run (systemd). It is listed unless the file already
  holds that content: a regular file whose first bytes are the content (``w`` does not
  truncate), or, under /proc and /sys, a value that reads back as written (give or take a
  final newline). ``w+`` appends, so it is always listed; a ``w`` to anything but a regular
  file (a FIFO, a device) too.
- ``f+``/``F`` truncate and rewrite: listed unless the file holds exactly the content.
- ``D`` and ``R`` under --remove empty their directories at every run: each entry they would
  remove is listed (from the clean walk's own dry run, so x/X lines and mount points are
  spared as they are then).
- ``c``/``b``: where the kernel refuses mknod (a container), the engine skips the line quietly;
  the plan still lists the creation.

A line that would fail (a file where a directory must be, an unsafe path) is listed with the
reason, so apply runs it and fails as the engine does; a line with '-' that would fail quietly
changes nothing and is not listed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from freshroot.errors import UnsafePathError
from freshroot.fs import ops
from freshroot.fs.accounts import Accounts
from freshroot.fs.chase import Chased, ChaseFlags, chase
from freshroot.tmpfiles.context import (
    Context,
    Creation,
    ItemFailed,
    Operation,
    base_name,
    is_normalized,
    parent_of,
)
from freshroot.tmpfiles.decide_attrs import COMPARE, KINDS, Node, NotThere, Unknown, node_of, walk_below
from freshroot.tmpfiles.globs import GlobIndex, is_glob
from freshroot.tmpfiles.model import Item, ItemType
from freshroot.tmpfiles.perms import _hardlinks_protected, mask_perms

# How the engine reaches a line's path (Decider._open).
ENTRY, FOLLOW, AT, WRITE = "entry", "follow", "at", "write"

if TYPE_CHECKING:  # the clean walk is imported only when a remove line needs it
    from freshroot.tmpfiles.clean import Cleaner
    from freshroot.tmpfiles.clean import Decision as Verdict

_CREATE, _REMOVE = Operation.CREATE, Operation.REMOVE
_EXISTING, _NORMAL = Creation.EXISTING, Creation.NORMAL

@dataclass(frozen=True, slots=True)
class Decision:
    """What one line would change, in plan words; ``operation`` is the engine's for it."""

    item: Item
    operation: Operation
    changes: tuple[str, ...]


def decide(ctx: Context, operations: Operation) -> list[Decision]:
    """Walk the phases as the engine would, changing nothing; return the decisions."""
    from freshroot.tmpfiles.executor import run_phases

    if operations & _REMOVE and not any(i.type in _REMOVING for g in ctx.config.all_groups() for i in g.items):
        operations &= ~_REMOVE  # only r, R and D act in the remove phase: no need to walk it
    decider = Decider(ctx)
    ctx.visit = decider.visit
    try:
        run_phases(ctx, operations)
    finally:
        ctx.visit = None
        ctx.done.clear()  # the engine may run the same context afterwards
    return decider.decisions


class Decider:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.overlay: dict[str, Node | None] = {}  # path -> what an earlier line leaves there
        self.decisions: list[Decision] = []
        self._accounts: Accounts | None = None
        self._cleaner: Cleaner | None = None
        self._euid, self._egid = os.geteuid(), os.getegid()

    # --- the hook --------------------------------------------------------------------

    def visit(self, item: Item, operation: Operation) -> bool:
        changes: list[str] = []
        try:
            # Identity first: enum.Flag's operators run Python code (see executor.CREATE).
            if operation is not _CREATE and operation & _REMOVE:
                self._remove(item, changes)
            if operation is _CREATE or operation & _CREATE:
                handler = _HANDLERS.get(item.type)
                if handler is not None:
                    handler(self, item, changes)
        except Unknown as e:
            if not item.allow_failure:
                changes.append(f"apply '{item.spec} {self.ctx.shown(item.path)}' ({e})")
        except ItemFailed as e:  # a check the engine itself makes (L?): it would fail the same way
            if not item.allow_failure:
                changes.append(f"fail: {e}")
        if changes:
            self.decisions.append(Decision(item, operation, tuple(changes)))
        return True

    # --- looking at the root (and at what earlier lines would leave) ------------------

    def look(self, path: str, how: str = ENTRY) -> Node | None:
        """The node at ``path``, reached as the engine reaches it for the line (``how``: see
        _open); None when missing. Unknown when the path cannot be walked (unsafe), NotThere
        when something that is not a directory is on the way."""
        known = self._predicted(path)
        if known is not False:
            return known  # type: ignore[return-value]
        try:
            with self._open(path, how) as c:
                target = os.fsencode(ops.readlink_fd(c.fd)) if stat.S_ISLNK(c.st.st_mode) else None
                return node_of(c.st, target)
        except FileNotFoundError:
            return None
        except UnsafePathError as e:
            raise Unknown(str(e)) from e
        except OSError as e:
            kind = NotThere if e.errno in (errno.ENOTDIR, errno.ELOOP) else Unknown
            raise kind(f"{self.ctx.shown(path)}: {e.strerror or e}") from e

    def _match(self, path: str, how: str = ENTRY) -> Node | None:
        """look() for a glob line's match: what is not there (whatever is in the way) is no match."""
        try:
            return self.look(path, how)
        except NotThere:
            return None

    def _predicted(self, path: str) -> Node | bool | None:
        """What the overlay says about ``path``: a Node, None (missing), or False (ask the root)."""
        if path in self.overlay:
            return self.overlay[path]
        above = path
        while above not in ("", "/"):
            above = parent_of(above)
            if above in self.overlay:
                node = self.overlay[above]
                return None if node is None or node.new else False
        return False

    def _open(self, path: str, how: str) -> Chased:
        """An O_PATH fd of ``path`` as the engine opens it for a line:

        - ENTRY: chase(SAFE|NOFOLLOW) of the entry itself (path_open_safe: z t a h k);
        - FOLLOW: chase(SAFE), a final symlink followed (e, the parents of a line);
        - AT: the parent chased with SAFE, the name looked at in it, not followed and not judged
          by the SAFE rule (open_parent and *at() calls: f d p c b L C r);
        - WRITE: as AT, but a symlink followed inside the root (what w writes to).
        """
        if how == ENTRY:
            return self.ctx._chase_entry(path)
        if how == FOLLOW:  # chase(SAFE), remembered when it is a directory
            return self.ctx.safe_dir(path)
        with self.ctx.safe_dir(parent_of(path)) as parent:
            name = base_name(path)
            fd = ops.open_path_at(parent.fd, name)
            st = os.fstat(fd)
            if how == WRITE and stat.S_ISLNK(st.st_mode):
                target = ops.readlink_fd(fd)
                os.close(fd)
                where = target if target.startswith("/") else f"{parent.path.rstrip('/')}/{target}"
                return chase(where, root_fd=self.ctx.root_fd)
            return Chased(fd, path, "", st)

    def _read(self, path: str, limit: int, how: str = AT) -> bytes:
        """Up to ``limit`` bytes of the regular file at ``path`` (never blocking)."""
        try:
            with self._open(path, how) as c:
                if not stat.S_ISREG(c.st.st_mode):
                    raise Unknown(f"{self.ctx.shown(path)} is not a regular file")
                fd = ops.reopen(c.fd, os.O_RDONLY | os.O_NONBLOCK)
            try:
                out = b""
                while len(out) < limit and (chunk := os.read(fd, limit - len(out))):
                    out += chunk
                return out
            finally:
                os.close(fd)
        except (OSError, UnsafePathError) as e:
            raise Unknown(f"{self.ctx.shown(path)} cannot be read: {getattr(e, 'strerror', None) or e}") from e

    def _matches(self, item: Item) -> list[str]:
        """The paths a glob-type line acts on: its path when it has no wildcards, else the
        matches in the root plus what earlier lines would make."""
        if not is_glob(item.path) and "{" not in item.path:
            return [item.path]
        from freshroot.tmpfiles.globwalk import expand

        found = set(expand(self.ctx.root_fd, item.path, safe=False))
        index = GlobIndex([item.path])
        for path, node in self.overlay.items():
            if node is None:
                found.discard(path)
            elif node.new and index.matches(path):
                found.add(path)
        return sorted(p for p in found if self._predicted(p) is not None)

    # --- words ---------------------------------------------------------------------------

    def _owner(self, uid: int | None, gid: int | None) -> str:
        if uid is None and gid is None:
            return ""
        if self._accounts is None:
            self._accounts = Accounts.load(self.ctx.root_fd)
        user = self._accounts.user(uid) if uid is not None else None
        group = self._accounts.group(gid) if gid is not None else None
        u = "-" if uid is None else user.name if user else str(uid)
        g = "-" if gid is None else group.name if group else str(gid)
        return f" {u}:{g}"

    def _made(self, item: Item, what: str, path: str, kind: int, changes: list[str], *, target: bytes | None = None,
              extra: str = "") -> None:
        """A node this line makes: said with its mode and owner, and remembered."""
        uid = item.uid.id if item.uid is not None else None
        gid = item.gid.id if item.gid is not None else None
        mode = f" {item.mode:04o}" if kind != stat.S_IFLNK else ""
        changes.append(f"create {what} {self.ctx.shown(path)}{mode}{self._owner(uid, gid)}{extra}")
        self.overlay[path] = Node(kind, item.mode & 0o7777, self._euid if uid is None else uid,
                                  self._egid if gid is None else gid, target, new=True)

    # --- owner and mode (systemd's fd_set_perms) -------------------------------------------

    def perms(self, item: Item, path: str, node: Node, creation: Creation, changes: list[str]) -> Node:
        if not item.mode_set and item.uid is None and item.gid is None:
            return node
        shown = self.ctx.shown(path)
        if node.nlink > 1 and node.kind != stat.S_IFDIR and not _hardlinks_protected():
            if not item.allow_failure:
                changes.append(f"fail: refusing to set permissions on hardlinked file {shown}")
            return node
        existing = creation is _EXISTING
        uid = item.uid.id if item.uid is not None and not (existing and item.uid.only_create) else node.uid
        gid = item.gid.id if item.gid is not None and not (existing and item.gid.only_create) else node.gid
        if item.mode_set and not (existing and item.mode_only_create):
            mode = mask_perms(item.mode, node.kind | node.mode) if item.mode_masked else item.mode
        else:
            mode = node.mode
        mode &= 0o7777
        if (uid, gid) != (node.uid, node.gid):
            changes.append(f"set owner of {shown} to{self._owner(uid, gid)}")
        if mode != node.mode and node.kind != stat.S_IFLNK:
            changes.append(f"set mode of {shown} to {mode:04o}")
        if node.kind == stat.S_IFLNK:
            mode = node.mode
        if (uid, gid, mode) == (node.uid, node.gid, node.mode):
            return node
        new = self.overlay[path] = replace(node, uid=uid, gid=gid, mode=mode)
        return new

    # --- the remove phase (r, R, D) -----------------------------------------------------

    def _remove(self, item: Item, changes: list[str]) -> None:
        if item.type is ItemType.REMOVE_PATH:
            for path in self._matches(item):
                node = self._match(path, AT)
                if node is None:
                    continue
                if node.kind == stat.S_IFDIR and not node.new and self._has_entries(path):
                    raise Unknown(f"{self.ctx.shown(path)} is a directory that is not empty: removing it fails")
                changes.append(f"remove {self.ctx.shown(path)}")
                self.overlay[path] = None
        elif item.type is ItemType.RECURSIVE_REMOVE_PATH:
            for path in self._matches(item):
                if self._match(path, AT) is not None:
                    self._sweep(item, path, changes, remove_instance=True)
        elif item.type is ItemType.TRUNCATE_DIRECTORY:
            node = self._match(item.path, AT)
            if node is not None and not node.new:
                self._sweep(item, item.path, changes, remove_instance=False)

    def _has_entries(self, path: str, how: str = AT) -> bool:
        try:
            with self._open(path, how) as c:
                return bool(ops.listdir_fd(c.fd))
        except (OSError, UnsafePathError) as e:
            raise Unknown(f"{self.ctx.shown(path)}: {getattr(e, 'strerror', None) or e}") from e

    def _sweep(self, item: Item, path: str, changes: list[str], *, remove_instance: bool) -> None:
        """What the engine's clean walk (remove_recursive) would remove: its own dry run."""
        from freshroot.tmpfiles.clean import Cleaner

        removed: list[str] = []
        problems: list[str] = []

        def explain(verdict: Verdict) -> None:  # the walk's own account of what it removes
            if verdict.action == "remove" and verdict.path not in removed:
                removed.append(verdict.path)

        if self._cleaner is None:  # one per plan: it indexes the whole configuration
            self._cleaner = Cleaner(self.ctx.config, self.ctx.root_fd, root=self.ctx.options.root,
                                    display_root=self.ctx.options.display_root, dry_run=True)
        cleaner = self._cleaner
        cleaner.log, cleaner.explain = problems.append, explain
        ok = cleaner.remove_recursive(item, path, remove_instance=remove_instance)
        removed = self._really_removed(removed)
        for p in removed:
            changes.append(f"remove {self.ctx.shown(p)}")
            self.overlay[p] = None
        if not ok or problems:
            changes.append(f"fail: {problems[0] if problems else self.ctx.shown(path)}")

    def _really_removed(self, removed: list[str]) -> list[str]:
        """The walk's dry run says it would remove a directory "if empty": it stays when the
        walk keeps anything in it (a line of its own, an x line, a mount point, a device)."""
        gone = set(removed)
        for path in sorted(removed, key=lambda p: p.count("/"), reverse=True):
            node = self.look(path, AT)
            if node is None or node.kind != stat.S_IFDIR or node.new:
                continue
            try:
                with self._open(path, AT) as c:
                    names = ops.listdir_fd(c.fd)
            except (OSError, UnsafePathError):
                continue
            if any(f"{path.rstrip('/')}/{n}" not in gone for n in names):
                gone.discard(path)
        return [p for p in removed if p in gone]

    # --- the create phase, per line type -------------------------------------------------

    def parents(self, item: Item, kind: int, changes: list[str]) -> None:
        """mkdir_parents_item: the missing directories above the path (0755), or with '=' what
        is in the way replaced."""
        if not is_normalized(item.path):
            raise Unknown(f"'{self.ctx.shown(item.path)}' is not normalized: the line fails")
        if item.try_replace:
            self._replace_in_the_way(item, kind, changes)
            return
        missing: list[str] = []
        above = parent_of(item.path)
        while above != "/" and self.look(above, FOLLOW) is None:
            missing.append(above)
            above = parent_of(above)
        for path in reversed(missing):
            changes.append(f"create directory {self.ctx.shown(path)} 0755")
            self.overlay[path] = Node(stat.S_IFDIR, 0o755, self._euid, self._egid, new=True)

    def _replace_in_the_way(self, item: Item, kind: int, changes: list[str]) -> None:
        names = [c for c in item.path.split("/") if c]
        path = ""
        for i, name in enumerate(names):
            path = f"{path}/{name}"
            last = i == len(names) - 1
            node = self.look(path, AT if last else FOLLOW)
            if last:
                if kind and node is not None and node.kind != kind:
                    changes.append(f"remove {self.ctx.shown(path)} (a {KINDS.get(node.kind, 'node')}, "
                                   f"'{item.spec}' replaces it)")
                    self.overlay[path] = None
                return
            if node is not None and node.kind == stat.S_IFDIR:
                continue
            if node is None:
                if self.look(path, AT) is not None:  # a dangling symlink: removed, then the directory made
                    changes.append(f"remove {self.ctx.shown(path)} (a dangling symlink)")
            else:
                changes.append(f"remove {self.ctx.shown(path)} (a {KINDS.get(node.kind, 'node')}, "
                               f"'{item.spec}' replaces it)")
            changes.append(f"create directory {self.ctx.shown(path)} 0755")
            self.overlay[path] = Node(stat.S_IFDIR, 0o755, self._euid, self._egid, new=True)

    def file(self, item: Item, changes: list[str]) -> None:
        self.parents(item, stat.S_IFREG, changes)
        path, data = item.path, _content(item)
        node = self.look(path, AT)
        if node is None:
            self._made(item, "file", path, stat.S_IFREG, changes, extra=f" with {len(data)} bytes" if data else "")
            return
        if node.kind != stat.S_IFREG:
            raise Unknown(f"{self.ctx.shown(path)} exists and is not a regular file: the line fails")
        if (item.plus or item.type is ItemType.TRUNCATE_FILE) and (node.size != len(data) or (
                data and not node.new and self._read(path, len(data) + 1) != data)):
            what = f"truncate {self.ctx.shown(path)} and write {len(data)} bytes" if data \
                else f"truncate {self.ctx.shown(path)}"
            changes.append(what)
            self.overlay[path] = replace(node, size=len(data))
        self.perms(item, path, node, _EXISTING, changes)

    def write(self, item: Item, changes: list[str]) -> None:
        data = _content(item)
        for path in self._matches(item):
            node = self._match(path, WRITE)
            if node is None:
                continue  # "Not writing missing file"
            shown = self.ctx.shown(path)
            if node.kind in (stat.S_IFDIR, stat.S_IFIFO, stat.S_IFSOCK):
                # Opened O_WRONLY|O_NONBLOCK: EISDIR, or ENXIO without a reader: the line fails.
                raise Unknown(f"{shown} is a {KINDS[node.kind]}: opening it for writing fails")
            if data:
                if item.plus:
                    changes.append(f"append {len(data)} bytes to {shown} (w+: at every apply)")
                elif node.kind != stat.S_IFREG:
                    changes.append(f"write {shown} (a {KINDS.get(node.kind, 'node')}: written at every apply)")
                elif node.new or not self._holds(path, data):
                    changes.append(f"write {shown}")
            self.perms(item, path, node, _EXISTING, changes)

    def _holds(self, path: str, data: bytes) -> bool:
        """Whether writing ``data`` at the start of the file would leave it as it is."""
        if path.startswith(("/proc/", "/sys/")):  # a value, read back as the kernel prints it
            current = self._read(path, len(data) + 2, WRITE)
            return current.rstrip(b"\n") == data.rstrip(b"\n")
        return self._read(path, len(data), WRITE) == data

    def directory(self, item: Item, changes: list[str]) -> None:
        self.parents(item, stat.S_IFDIR, changes)
        try:
            node = self.look(item.path, AT)
        except NotThere:
            return  # the engine says it "already exists and is not a directory"; nothing changes
        if node is None:
            subvolume = item.type in _SUBVOLUMES and self._subvolumes()
            self._made(item, "subvolume" if subvolume else "directory", item.path, stat.S_IFDIR, changes)
        elif node.kind == stat.S_IFDIR:
            self.perms(item, item.path, node, _EXISTING, changes)
        # Anything else: the engine says it is not a directory and changes nothing.

    def _subvolumes(self) -> bool:
        from freshroot.tmpfiles.create import _subvolumes_wanted

        return _subvolumes_wanted(self.ctx)

    def empty(self, item: Item, changes: list[str]) -> None:
        for path in self._matches(item):
            node = self._match(path, FOLLOW)
            if node is not None and node.kind == stat.S_IFDIR:
                self.perms(item, path, node, _EXISTING, changes)

    def node(self, item: Item, changes: list[str]) -> None:
        kind = {ItemType.CREATE_FIFO: stat.S_IFIFO, ItemType.CREATE_CHAR_DEVICE: stat.S_IFCHR}.get(
            item.type, stat.S_IFBLK)
        self.parents(item, kind, changes)
        what = KINDS[kind]
        node = self.look(item.path, AT)
        extra = f" {item.device[0]}:{item.device[1]}" if item.device and kind != stat.S_IFIFO else ""
        if node is None:
            self._made(item, what, item.path, kind, changes, extra=extra)
        elif node.kind == kind:
            self.perms(item, item.path, node, _EXISTING, changes)
        elif item.plus:
            changes.append(f"replace {self.ctx.shown(item.path)} (a {KINDS.get(node.kind, 'node')}) with a {what}")
            made = Node(kind, item.mode & 0o7777, self._euid, self._egid, new=True)
            self.overlay[item.path] = made
            self.perms(item, item.path, made, Creation.FORCE, [])

    def symlink(self, item: Item, changes: list[str]) -> None:
        self.parents(item, stat.S_IFLNK, changes)
        path, target = item.path, item.argument or ""
        if item.if_exists:
            from freshroot.tmpfiles.create import _target_exists

            predicted = self._predicted(_link_target(path, target))
            if predicted is None or (predicted is False and not _target_exists(self.ctx, path, target)):
                return  # L?: the target is not there, the line is skipped
        raw = os.fsencode(target)
        node = self.look(path, AT)
        shown = self.ctx.shown(path)
        if node is None:
            self._made(item, "symlink", path, stat.S_IFLNK, changes, target=raw, extra=f" -> {target}")
        elif node.kind == stat.S_IFLNK and node.target == raw:
            self.perms(item, path, node, _EXISTING, changes)
        elif item.plus:
            changes.append(f"replace {shown} (a {KINDS.get(node.kind, 'node')}) with a symlink to {target}")
            made = Node(stat.S_IFLNK, 0o777, self._euid, self._egid, raw, new=True)
            self.overlay[path] = made
            self.perms(item, path, made, Creation.FORCE, [])

    def copy(self, item: Item, changes: list[str]) -> None:
        self.parents(item, 0, changes)
        source, path = item.argument or "", item.path
        try:  # as the engine opens it: inside the root, not with the SAFE rule
            with chase(source, root_fd=self.ctx.root_fd, flags=ChaseFlags.NOFOLLOW) as c:
                src = node_of(c.st)
        except OSError as e:
            raise Unknown(f"the source {self.ctx.shown(source)}: {e.strerror}: the line fails") from e
        node = self.look(path, AT)
        shown, shown_source = self.ctx.shown(path), self.ctx.shown(source)
        if node is None:
            changes.append(f"copy {shown_source} to {shown}")
            uid = item.uid.id if item.uid is not None else src.uid
            gid = item.gid.id if item.gid is not None else src.gid
            self.overlay[path] = self.perms(item, path, replace(src, uid=uid, gid=gid, new=True), Creation.COPIED, [])
            return
        if src.kind == stat.S_IFDIR and not node.new:
            # What copy_tree_at meets at the top (freshroot.tmpfiles.copy._copy_dir).
            fails = Unknown(f"{shown} is in the way of the directory {shown_source}: copying fails")
            if node.kind == stat.S_IFLNK:
                followed = self.look(path, WRITE)
                if followed is not None and not (followed.kind == stat.S_IFDIR and not item.plus
                                                 and self._has_entries(path, WRITE)):
                    raise fails
            elif node.kind != stat.S_IFDIR:
                raise fails
            elif not item.plus and not self._has_entries(path):
                changes.append(f"copy {shown_source} into {shown}")
            elif item.plus and self._missing_below(source, path):
                changes.append(f"copy what {shown} lacks of {shown_source} (C+)")
        if node.kind != src.kind:
            return  # "file exists already and is of different type"
        self.perms(item, path, node, Creation.COPIED, changes)

    def _missing_below(self, source: str, path: str) -> bool:
        """Whether C+ would copy anything: a name in the source tree missing in the target."""
        todo = [("", )]
        while todo:
            (rel,) = todo.pop()
            try:
                with chase(source + rel, root_fd=self.ctx.root_fd, flags=ChaseFlags.NOFOLLOW) as s:
                    names = ops.listdir_fd(s.fd) if stat.S_ISDIR(s.st.st_mode) else []
            except OSError as e:
                raise Unknown(f"{self.ctx.shown(source + rel)}: {e.strerror}") from e
            for name in names:
                here = self.look(f"{path}{rel}/{name}", AT)
                if here is None:
                    return True
                if here.kind == stat.S_IFDIR:
                    todo.append((f"{rel}/{name}",))
        return False

    # --- z Z t T a A h H k K: each match (and, for the capitals, everything below it) ----------

    def adjust(self, item: Item, changes: list[str]) -> None:
        canonical = item.type.canonical
        relabel = canonical in (ItemType.RELABEL_PATH, ItemType.RECURSIVE_RELABEL_PATH)
        recursive = item.type in _RECURSIVE
        if item.type is ItemType.SET_CAPABILITY:
            from freshroot.tmpfiles import caps

            try:
                caps.parse(item.argument or "")
            except caps.CapabilityTextError:
                return  # the engine does not even open the path (freshroot.tmpfiles.create._caps)
        for path in self._matches(item):
            node = self._match(path)
            if node is None:
                continue  # no match: glob(3) finds nothing
            for sub, sub_node, fd in walk_below(self.ctx, self.overlay, path, node, recursive=recursive):
                if relabel:
                    self.perms(item, sub, sub_node, _EXISTING, changes)
                else:
                    COMPARE[canonical](self.ctx, item, sub, sub_node, fd, changes)


def _content(item: Item) -> bytes:
    return item.content or b""


def _link_target(path: str, target: str) -> str:
    import posixpath

    return posixpath.normpath(target if target.startswith("/") else posixpath.join(parent_of(path), target))


_REMOVING = frozenset({ItemType.REMOVE_PATH, ItemType.RECURSIVE_REMOVE_PATH, ItemType.TRUNCATE_DIRECTORY})
_SUBVOLUMES = frozenset({ItemType.CREATE_SUBVOLUME, ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA,
                         ItemType.CREATE_SUBVOLUME_NEW_QUOTA})
_RECURSIVE = frozenset({ItemType.RECURSIVE_RELABEL_PATH, ItemType.RECURSIVE_SET_XATTR, ItemType.RECURSIVE_SET_ACL,
                        ItemType.RECURSIVE_SET_ATTRIBUTE, ItemType.RECURSIVE_SET_CAPABILITY})
_HANDLERS: dict[ItemType, Callable[[Decider, Item, list[str]], None]] = {
    ItemType.CREATE_FILE: Decider.file, ItemType.TRUNCATE_FILE: Decider.file,
    ItemType.COPY_FILES: Decider.copy, ItemType.WRITE_FILE: Decider.write,
    ItemType.CREATE_DIRECTORY: Decider.directory, ItemType.TRUNCATE_DIRECTORY: Decider.directory,
    ItemType.CREATE_SUBVOLUME: Decider.directory, ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA: Decider.directory,
    ItemType.CREATE_SUBVOLUME_NEW_QUOTA: Decider.directory,
    ItemType.EMPTY_DIRECTORY: Decider.empty,
    ItemType.CREATE_FIFO: Decider.node, ItemType.CREATE_CHAR_DEVICE: Decider.node,
    ItemType.CREATE_BLOCK_DEVICE: Decider.node,
    ItemType.CREATE_SYMLINK: Decider.symlink,
    **dict.fromkeys(COMPARE, Decider.adjust),
    ItemType.RELABEL_PATH: Decider.adjust, ItemType.RECURSIVE_RELABEL_PATH: Decider.adjust,
    ItemType.ADJUST_MODE: Decider.adjust,
}
