"""POSIX ACLs for a, a+, A and A+ lines, as systemd's fd_set_acls / path_set_acl do.

- ``a`` replaces the access ACL (a mask computed when named entries need one) and, on
  directories, the default ACL; ``a+`` merges the entries into what the file has (then the
  mask is computed if needed). Missing user::, group:: and other:: entries are taken from
  the file's current ACL (or its mode).
- Entries written with ``X`` get execute only on directories and on files that already have
  an execute bit somewhere (or get one from the line).
- Symlinks are skipped; a file system without ACL support is skipped quietly.
- The argument is checked as systemd does at parse time (a bad ACL is a warning there, not an
  error) and parsed again here, where the line's path is known.

Names (u:alice:rwx) are resolved in the *target root's* accounts; systemd asks the host's
NSS even under --root. A deliberate difference, see differences.py.
"""

from __future__ import annotations

import errno
import os
import stat

from freshroot.errors import ConfigError
from freshroot.fs import acl
from freshroot.fs.accounts import Accounts
from freshroot.tmpfiles.context import Context, Creation
from freshroot.tmpfiles.model import Item
from freshroot.tmpfiles.perms import path_action

_NOT_SUPPORTED = (errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS)


def _accounts(ctx: Context) -> Accounts:
    cached = ctx.cache.get("accounts")
    if not isinstance(cached, Accounts):
        cached = Accounts.load(ctx.root_fd)
        ctx.cache["accounts"] = cached
    return cached


def _spec(ctx: Context, item: Item) -> acl.AclSpec | None:
    key = f"acl:{id(item)}"
    if key in ctx.cache:
        found = ctx.cache[key]
        return found if isinstance(found, acl.AclSpec) else None
    spec: acl.AclSpec | None
    try:
        spec = acl.parse(item.argument or "", _accounts(ctx), want_mask=not item.plus, location=item.location)
    except ConfigError as e:
        # The parse of the line has said so already (freshroot.tmpfiles.parse, as systemd does).
        ctx.debug(f'Failed to parse ACL "{item.argument}", ignoring: {e.message}')
        spec = None
    ctx.cache[key] = spec
    return spec


def _current(fd: int, st: os.stat_result) -> acl.Acl:
    return acl.get_fd(fd) or acl.Acl.from_mode(st.st_mode)


def _cond_exec(fd: int, st: os.stat_result, spec: acl.AclSpec, append: bool) -> acl.Acl:
    """systemd's parse_acl_cond_exec: the X entries, with x only where it makes sense."""
    assert spec.access_exec is not None
    has_exec = stat.S_ISDIR(st.st_mode)
    if not has_exec:
        for e in _current(fd, st).entries:
            if e.tag == acl.Tag.MASK or (not append and e.tag in (acl.Tag.USER, acl.Tag.GROUP)):
                continue
            if e.perm & acl.EXECUTE:
                has_exec = True
                break
    if not has_exec and spec.access is not None:
        has_exec = any(e.perm & acl.EXECUTE for e in spec.access.entries)
    entries = list(spec.access.entries) if spec.access is not None else []
    for e in spec.access_exec.entries:
        entries.append(e if has_exec else acl.Entry(e.tag, e.qualifier, e.perm & ~acl.EXECUTE))
    # Kept in the order written, twice-named entries included (libacl appends them).
    merged = acl.Acl.sorted(entries)
    return merged if append else merged.with_mask_if_needed()


def _set(ctx: Context, fd: int, st: os.stat_result, path: str, new: acl.Acl, *, default: bool, modify: bool) -> None:
    if modify:
        existing = acl.get_fd(fd, default=True) if default else _current(fd, st)
        # Merged into the file's ACL (an empty one when it has no default ACL): a later entry
        # for the same user or group replaces an earlier one, as systemd's acls_for_file.
        new = (existing or acl.Acl(())).merged(new).with_mask_if_needed()
    # add_base_acls_if_needed: missing user::, group::, other:: come from the mode bits.
    new = new.with_base(st.st_mode)
    kind = "default" if default else "access"
    # acl_to_any_text(TEXT_ABBREVIATE), as systemd prints it (ids, not names: systemd's names
    # would be the host's).
    text = new.to_text(abbreviate=True)
    ctx.action("Would set", "Setting", f"{kind} ACL {text} on {ctx.shown(path)}")
    if ctx.dry_run:
        return
    try:
        acl.set_fd(fd, new, default=default)
    except (OSError, ValueError) as e:
        if isinstance(e, OSError) and e.errno in _NOT_SUPPORTED:
            raise
        # systemd's path_set_acl: the ACL it tried, and the kernel's answer (EINVAL for an
        # ACL the kernel refuses, such as two user:: entries).
        reason = e.strerror if isinstance(e, OSError) and e.strerror else os.strerror(errno.EINVAL)
        raise ctx.error(f'Setting {kind} ACL "{text}" on {ctx.shown(path)} failed: {reason}') from e


def fd_set_acls(
    ctx: Context, item: Item, fd: int, path: str, st: os.stat_result | None, creation: Creation
) -> None:
    del creation
    spec = _spec(ctx, item)
    if spec is None:
        return
    if st is None:
        st = os.fstat(fd)
    if stat.S_ISLNK(st.st_mode):
        ctx.debug(f"Skipping ACL fix for symlink {ctx.shown(path)}.")
        return
    try:
        if spec.access_exec is not None:
            _set(ctx, fd, st, path, _cond_exec(fd, st, spec, item.plus), default=False, modify=item.plus)
        elif spec.access is not None:
            _set(ctx, fd, st, path, spec.access, default=False, modify=item.plus)
        if spec.default is not None and stat.S_ISDIR(st.st_mode):
            _set(ctx, fd, os.fstat(fd), path, spec.default, default=True, modify=item.plus)
    except OSError as e:
        if e.errno in _NOT_SUPPORTED:
            ctx.debug(f"ACLs not supported by file system at {ctx.shown(path)}")
            return
        raise ctx.os_failure(f'ACL operation on "{ctx.shown(path)}" failed', e) from e


def path_set_acls(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    path_action(ctx, item, path, fd_set_acls, creation)
