"""Image content: what a freshly wiped root brings from its image into a persisted path.

At boot, systemd's mount units and impermanence bind storage over whatever the OS image
ships in a persisted directory (Debian ships /var/log, /etc/ssh, ...). That content is the
image's, not the user's: it comes back with the image at every boot, and hiding it loses
nothing. User data (written since boot, or on a machine being converted) is never hidden:
it is migrated into an empty storage, or refused when storage holds other data.

How freshroot tells them apart (docs/persistence.md, "Image content"):

- The boot activation (``freshroot apply --boot``) looks for the mark the previous boot left
  on the root (:data:`ROOT_MARK`). A root without it is fresh from its image: it was wiped
  (or this is the first boot after ``freshroot install``). A root with it was not wiped,
  and what it holds counts as user data.
- Before doing anything it writes :data:`BOOT_MARK` in /run: this boot's id, whether the
  root is fresh, and the time. Then it marks the root.
- A path holds image content when the root is fresh this boot and nothing in it changed
  since that time (every inode's ctime is older than the mark; at boot itself, by
  construction, all of it). So ``apply`` later in the same boot decides exactly as the boot
  did for what the image brought, and treats anything written since as user data.

What is done with image content, by the one planner boot and apply share:

- storage holds something: storage is bound (or linked) over it, hiding it;
- storage is missing: it is seeded from the image: a directory's sub-directories (owner,
  mode, ACLs; not the files), so e.g. /var/log/journal keeps journald persistent; a file's
  content; then bound or linked as usual.

What was hidden is recorded in :data:`HIDDEN` for ``status`` and ``audit``.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from freshroot.errors import UnsafePathError
from freshroot.fs import ops
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist import model
from freshroot.persist.dircache import DirCache
from freshroot.persist.model import Kind
from freshroot.plan.action import Action, Context

RUN_DIR = "/run/freshroot"
BOOT_MARK = f"{RUN_DIR}/boot.json"
HIDDEN = f"{RUN_DIR}/hidden-image-content.json"
ROOT_MARK = model.ROOT_MARK  # freshroot's own state: never migrated into storage
BOOT_ID = "/proc/sys/kernel/random/boot_id"
MAX_WALK = 100_000  # inodes looked at before giving up (then: user data, the safe answer)
# File times come from the kernel's coarse clock, a tick behind time.time(): anything changed
# this close to the mark counts as changed after it (user data, the safe answer).
SLACK = 0.05


def boot_id() -> str:
    try:
        with open(BOOT_ID, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class BootMark:
    """The mark the boot leaves: which boot, and whether its root was fresh from its image."""
    boot_id: str
    fresh: bool
    time: float


def _read_json(root_fd: int, path: str) -> Any:
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
            if not stat.S_ISREG(found.st.st_mode):
                return None
            fd = ops.reopen(found.fd, os.O_RDONLY | os.O_NONBLOCK)
        try:
            return json.loads(ops.read_fd(fd, 1 << 20))
        finally:
            os.close(fd)
    except (OSError, UnsafePathError, ValueError):
        return None


def read_mark(root_fd: int) -> BootMark | None:
    """This boot's mark, or None (no boot activation this boot, or another boot's mark)."""
    data = _read_json(root_fd, BOOT_MARK)
    if not isinstance(data, dict) or data.get("boot_id") != boot_id() or not boot_id():
        return None
    fresh, when = data.get("fresh"), data.get("time")
    if not isinstance(fresh, bool) or not isinstance(when, (int, float)):
        return None
    return BootMark(boot_id(), fresh, float(when))


def mark_boot(root_fd: int) -> BootMark:
    """At boot, before anything else: is the root fresh from its image? Record the answer
    in /run, then mark the root so that the next boot can tell whether it was wiped."""
    parent, name = ROOT_MARK.rsplit("/", 1)
    fresh = True
    try:
        with chase(ROOT_MARK, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW):
            fresh = False
    except (FileNotFoundError, NotADirectoryError):
        pass
    except (OSError, UnsafePathError):
        fresh = False  # cannot tell: user data, the safe answer
    mark = BootMark(boot_id(), fresh, time.time())
    with ops.mkdir_parents(root_fd, RUN_DIR, 0o755) as d:
        replace_at(d.fd, BOOT_MARK.rsplit("/", 1)[1],
                   json.dumps({"boot_id": mark.boot_id, "fresh": mark.fresh, "time": mark.time}).encode(),
                   mode=0o644, durable=False)
    # Only on the root's own file system: a mark that lands in storage (a persisted /var)
    # would survive the wipe and make every boot look like one on a kept root.
    with ops.mkdir_parents(root_fd, parent, 0o755) as d:
        if os.fstat(d.fd).st_dev == os.fstat(root_fd).st_dev:
            replace_at(d.fd, name, (mark.boot_id + "\n").encode(), mode=0o644, durable=False)
    return mark


def unchanged_since(root_fd: int, path: str, since: float) -> bool:
    """Whether nothing at or below ``path`` changed after ``since`` (ctimes; symlinks not
    followed, other file systems not entered). An iterative walk on fds."""
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
            top = found.st
            since -= SLACK
            if top.st_ctime >= since:
                return False
            if not stat.S_ISDIR(top.st_mode):
                return True
            stack = [ops.reopen(found.fd, os.O_RDONLY | os.O_DIRECTORY)]
    except (OSError, UnsafePathError):
        return False
    seen = 0
    try:
        while stack:
            fd = stack.pop()
            try:
                for entry in ops.scandir_fd(fd):
                    st = entry.stat(follow_symlinks=False)
                    seen += 1
                    if st.st_ctime >= since or seen > MAX_WALK:
                        return False
                    if stat.S_ISDIR(st.st_mode) and st.st_dev == top.st_dev:
                        stack.append(ops.open_dir_at(fd, entry.name))
            finally:
                os.close(fd)
    except OSError:
        return False
    finally:
        for fd in stack:
            os.close(fd)
    return True


def is_image_content(ctx: Context, path: str) -> bool:
    """Whether the data at ``path`` on the root is the image's (see the module doc)."""
    mark = read_mark(ctx.root_fd)
    if mark is None or not mark.fresh:
        return False
    if ctx.boot:
        return True  # the boot activation plans before anything else writes
    return unchanged_since(ctx.root_fd, path, mark.time)


# --- seeding storage from the image ------------------------------------------------------


def _copy_meta(src_fd: int, dst_fd: int, st: os.stat_result) -> None:
    from freshroot.fs import acl  # only when seeding: every boot imports this module

    ops.chown_fd(dst_fd, st.st_uid, st.st_gid)
    ops.chmod_fd(dst_fd, stat.S_IMODE(st.st_mode))
    for default in (False, True):
        try:
            got = acl.get_fd(src_fd, default=default)
            if got is not None:
                acl.set_fd(dst_fd, got, default=default)
        except OSError:
            pass  # a file system without ACLs: owner and mode are what matters


def seed_skeleton(root_fd: int, image: str, storage: str) -> int:
    """Create in the storage directory ``storage`` the sub-directories of ``image`` (owner,
    mode, ACLs), never the files; existing ones are left alone. Returns how many."""
    made = 0
    with chase(image, root_fd=root_fd, flags=ChaseFlags.SAFE) as i, \
            chase(storage, root_fd=root_fd, flags=ChaseFlags.SAFE) as s:
        stack = [(ops.reopen(i.fd, os.O_RDONLY | os.O_DIRECTORY), ops.reopen(s.fd, os.O_RDONLY | os.O_DIRECTORY))]
        dev = i.st.st_dev
    try:
        while stack:
            src, dst = stack.pop()
            try:
                for entry in ops.scandir_fd(src):
                    st = entry.stat(follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode) or st.st_dev != dev:
                        continue
                    if ops.mkdir_at(dst, entry.name, 0o700):
                        made += 1
                        sub_src = ops.open_dir_at(src, entry.name)
                        sub_dst = ops.open_dir_at(dst, entry.name)
                        try:
                            _copy_meta(sub_src, sub_dst, st)
                        except OSError:
                            os.close(sub_src)
                            os.close(sub_dst)
                            raise
                        stack.append((sub_src, sub_dst))
            finally:
                os.close(src)
                os.close(dst)
    finally:
        for a, b in stack:
            os.close(a)
            os.close(b)
    return made


@dataclass(frozen=True)
class SeedFromImage(Action):
    """Create storage for ``path`` from the image's content there (storage is missing)."""

    path: str
    source: str
    kind: Kind
    owner: tuple[int, int, int] | None = None  # a file's (uid, gid, mode): declared, else the image's
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        what = "the sub-directories (owner, mode, ACLs)" if self.kind is Kind.DIRECTORY else "the content"
        return f"seed {self.source} with {what} of the image's {self.path}"

    def record(self) -> Mapping[str, Any]:
        return {"op": "seed-from-image", "path": self.path, "source": self.source}

    def apply(self, ctx: Context) -> None:
        if self.kind is Kind.DIRECTORY:
            seed_skeleton(ctx.root_fd, self.path, self.source)
            return
        with chase(self.path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
            if not stat.S_ISREG(found.st.st_mode):
                return
            fd = ops.reopen(found.fd, os.O_RDONLY | os.O_NONBLOCK)
            st = found.st
        try:
            data = ops.read_fd(fd, 1 << 30)
        finally:
            os.close(fd)
        parent, name = self.source.rsplit("/", 1)
        with chase(parent or "/", root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as d:
            try:
                ops.lstat_at(d.fd, name)
            except FileNotFoundError:
                uid, gid, mode = self.owner or (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
                replace_at(d.fd, name, data, mode=mode, uid=uid, gid=gid)


@dataclass(frozen=True)
class HideImageContent(Action):
    """Remember that the image's content at ``path`` is hidden under storage (for status
    and audit), and, for a symlinked file, remove the image's copy (it comes back with the
    image at the next boot) so the link can take its place."""

    path: str
    unlink: bool = False

    def describe(self) -> str:
        verb = "replace" if self.unlink else "hide"
        return f"{verb} the image's content at {self.path} (not user data: it comes with the image)"

    def record(self) -> Mapping[str, Any]:
        return {"op": "hide-image-content", "path": self.path}

    def apply(self, ctx: Context) -> None:
        if self.unlink:
            with chase(self.path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.PARENT) as p:
                st = ops.lstat_at(p.fd, p.rest)
                if stat.S_ISREG(st.st_mode):
                    ops.unlink_at(p.fd, p.rest)
        hidden = hidden_paths(ctx.root_fd)
        if self.path in hidden:
            return
        with ops.mkdir_parents(ctx.root_fd, RUN_DIR, 0o755) as d:
            replace_at(d.fd, HIDDEN.rsplit("/", 1)[1], json.dumps(sorted({*hidden, self.path})).encode(),
                       mode=0o644, durable=False)


def hidden_paths(root_fd: int) -> list[str]:
    """The paths whose image content this boot hid (``status``, ``audit``)."""
    data = _read_json(root_fd, HIDDEN)
    return [p for p in data if isinstance(p, str)] if isinstance(data, list) else []
