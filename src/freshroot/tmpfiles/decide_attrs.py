"""Facts for the plan's tmpfiles decisions (freshroot.tmpfiles.decide): what is at a path, and
what the lines that adjust an existing node (t T a A h H k K) would change on it (and the
walk below a match for the recursive ones), compared
the way the engine's own functions (perms, acls, caps) would set it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from freshroot.errors import UnsafePathError
from freshroot.fs import ops
from freshroot.tmpfiles.context import Context
from freshroot.tmpfiles.model import Item, ItemType

KINDS = {stat.S_IFDIR: "directory", stat.S_IFREG: "file", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo",
         stat.S_IFCHR: "character device", stat.S_IFBLK: "block device", stat.S_IFSOCK: "socket"}


@dataclass(frozen=True, slots=True)
class Node:
    """What is (or, after an earlier line, would be) at a path."""

    kind: int  # stat.S_IFMT
    mode: int  # & 0o7777
    uid: int
    gid: int
    target: bytes | None = None  # a symlink's
    size: int = 0
    nlink: int = 1
    new: bool = False  # made by this plan: nothing below it, no xattrs, ACLs or attributes


def node_of(st: os.stat_result, target: bytes | None = None) -> Node:
    return Node(stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid, st.st_gid, target, st.st_size,
                st.st_nlink)


class Unknown(Exception):  # noqa: N818  (control flow: the line cannot be judged without running it)
    pass


class NotThere(Unknown):
    """A file or a loop of symlinks where the path needs a directory: glob(3) matches nothing
    there, and a d line only says so; other lines fail."""


def walk_below(ctx: Context, overlay: Mapping[str, Node | None], path: str, node: Node, *,
               recursive: bool) -> Iterator[tuple[str, Node, int | None]]:
    """The match and (recursive) everything below it, never following a symlink, each
    with an O_PATH fd (None for what this plan makes)."""
    if node.new:
        yield path, node, None
        return
    try:
        top = ctx._chase_entry(path)  # as path_open_safe: SAFE|NOFOLLOW
    except (OSError, UnsafePathError) as e:
        raise Unknown(f"{ctx.shown(path)}: {getattr(e, 'strerror', None) or e}") from e
    # Depth first, one open directory per level below the match (as the engine's item_do
    # holds them), never one fd per pending entry.
    stack: list[tuple[int, str, Iterator[str]]] = []
    here, fd = path, top.detach()
    try:
        while fd >= 0:
            st = os.fstat(fd)
            yield here, overlay.get(here) or node_of(st), fd
            if recursive and stat.S_ISDIR(st.st_mode):
                stack.append((fd, here, iter(sorted(ops.listdir_fd(fd)))))
            else:
                os.close(fd)
            fd = -1
            while stack and fd < 0:
                dfd, dpath, names = stack[-1]
                name = next(names, None)
                if name is None:
                    os.close(stack.pop()[0])
                    continue
                try:
                    fd = ops.open_path_at(dfd, name)
                except FileNotFoundError:
                    continue
                here = f"{dpath.rstrip('/')}/{name}"
    finally:
        if fd >= 0:
            os.close(fd)
        for dfd, _, _ in stack:
            os.close(dfd)


def xattrs(ctx: Context, item: Item, path: str, node: Node, fd: int | None, changes: list[str]) -> None:
    from freshroot.fs import xattr

    if item.xattrs and node.kind not in (stat.S_IFREG, stat.S_IFDIR):
        # user.* attributes exist only on files and directories: the kernel refuses (EPERM).
        raise Unknown(f"extended attributes cannot be set on the {KINDS.get(node.kind, 'node')} "
                       f"{ctx.shown(path)}: the line fails")
    for name, value in item.xattrs:
        try:
            current = xattr.get_fd(fd, name) if fd is not None else None
        except OSError:
            current = None
        if current != value:
            changes.append(f"set extended attribute {name} of {ctx.shown(path)}")


def acls(ctx: Context, item: Item, path: str, node: Node, fd: int | None, changes: list[str]) -> None:
    from freshroot.fs import acl
    from freshroot.tmpfiles import acls as engine

    spec = engine._spec(ctx, item)
    if spec is None or node.kind == stat.S_IFLNK:
        return
    shown = ctx.shown(path)
    if fd is None:
        changes.append(f"set the ACL of {shown}")
        return
    try:
        st = os.fstat(fd)
        for default in (False, True):
            if default and (spec.default is None or not stat.S_ISDIR(st.st_mode)):
                continue
            if default:
                new = spec.default
            elif spec.access_exec is not None:
                new = engine._cond_exec(fd, st, spec, item.plus)
            else:
                new = spec.access
            if new is None:
                continue
            current = acl.get_fd(fd, default=True) if default else engine._current(fd, st)
            if item.plus:
                new = (current.merged(new) if current is not None else new).with_mask_if_needed()
            new = new.with_base(st.st_mode)
            if current is None or acl.Acl.of(current.entries) != acl.Acl.of(new.entries):
                changes.append(f"set the {'default' if default else 'access'} ACL of {shown}")
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS):
            return  # the engine skips a file system without ACLs
        raise Unknown(f"{shown}: {e.strerror}") from e


def attributes(ctx: Context, item: Item, path: str, node: Node, fd: int | None, changes: list[str]) -> None:
    from freshroot.fs import attrs

    if not item.attribute_mask:
        return
    shown = ctx.shown(path)
    if node.kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise Unknown(f"file attributes cannot be set on {shown}: the line fails")
    value = item.attribute_value & item.attribute_mask
    if node.kind != stat.S_IFDIR:
        value &= ~attrs.DIRSYNC
    current = None
    if fd is not None:
        try:
            current = attrs.get_flags(fd)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS, errno.EINVAL):
                return  # the engine only notes it: nothing changes
            current = None
    mask = item.attribute_mask & ~_FIXED_FLAGS
    if current is None or (current & mask) != (value & mask):
        changes.append(f"set file attributes 0x{value:08x} of {shown}")


def caps(ctx: Context, item: Item, path: str, node: Node, fd: int | None, changes: list[str]) -> None:
    from freshroot.fs import xattr
    from freshroot.tmpfiles import caps as engine

    if node.kind != stat.S_IFREG:
        return
    current = b""
    if fd is not None:
        try:
            current = xattr.get_fd(fd, "security.capability") or b""
        except OSError:
            current = b""
    start = engine.decode(current) if item.plus else (0, 0, 0)
    try:
        effective, permitted, inheritable, rootuid = engine.parse(item.argument or "", start)
    except engine.CapabilityTextError:
        return
    if effective and effective != permitted | inheritable:
        raise Unknown("inconsistent effective bits: the line fails")
    if engine.encode(effective, permitted, inheritable, rootuid) != current:
        changes.append(f"set capabilities '{item.argument}' of {ctx.shown(path)}")


# File attributes the file system sets itself and FS_IOC_SETFLAGS leaves alone (extents, hashed
# index, inline data, verity, encryption, huge file, casefold): the engine warns that it could
# not change them and changes nothing, so they are not a decision.
_FIXED_FLAGS = 0x00080000 | 0x00001000 | 0x10000000 | 0x00100000 | 0x00000800 | 0x00040000 | 0x40000000

Compare = Callable[[Context, Item, str, Node, "int | None", list[str]], None]
COMPARE: dict[ItemType, Compare] = {
    ItemType.SET_XATTR: xattrs, ItemType.RECURSIVE_SET_XATTR: xattrs,
    ItemType.SET_ACL: acls, ItemType.RECURSIVE_SET_ACL: acls,
    ItemType.SET_ATTRIBUTE: attributes, ItemType.RECURSIVE_SET_ATTRIBUTE: attributes,
    ItemType.SET_CAPABILITY: caps, ItemType.RECURSIVE_SET_CAPABILITY: caps,
}
