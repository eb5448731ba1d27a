"""The C line: copy a tree into place, as systemd's copy_files / copy_tree_at do.

The source is looked up inside the root (systemd prefixes it with --root). A missing target
is made as a copy (contents, mode, owner or the line's user/group, xattrs, timestamps);
an existing empty directory is filled ('C'), an existing directory is merged into without
overwriting anything ('C+'); anything else that exists is left alone. Then owner and mode
of the top are adjusted as for any created node. The copy itself is freshroot.fs.copy's,
with systemd's policy (CopyPolicy.systemd).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import replace

from freshroot.fs import ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.copy import CopyPolicy, copy_fd_at
from freshroot.tmpfiles.context import Context, Creation, base_name
from freshroot.tmpfiles.model import Item
from freshroot.tmpfiles.perms import set_perms

# systemd's copy_tree_at as tmpfiles calls it: only user.* attributes (what survives a copy
# between file systems), the line's owner (if given) on everything copied.
SYSTEMD_COPY = CopyPolicy(xattr_prefix="user.", systemd=True)


def copy_files(ctx: Context, item: Item) -> None:
    source = item.argument or ""
    # systemd joins the source with --root when it reads the line: its messages show it so.
    ctx.action("Would copy", "Copying", f'tree "{ctx.shown(source)}" to "{ctx.shown(item.path)}"')
    if ctx.dry_run:
        return
    name = base_name(item.path)
    uid = item.uid.id if item.uid is not None else -1
    gid = item.gid.id if item.gid is not None else -1
    with ctx.open_parent(item, item.path) as parent:
        err: OSError | None = None
        try:
            with chase(source, root_fd=ctx.root_fd, flags=ChaseFlags.NOFOLLOW) as src:
                copy_fd_at(src.fd, parent.fd, name, replace(SYSTEMD_COPY, merge=item.plus, uid=uid, gid=gid))
        except OSError as e:
            err = e
        if err is not None and err.errno != errno.EEXIST:
            raise ctx.os_failure(f"Failed to copy files to {ctx.shown(item.path)}", err) from err
        try:
            fd = ops.open_path_at(parent.fd, name)
        except OSError as e:
            if err is not None:
                raise ctx.os_failure(f"Failed to copy files to {ctx.shown(item.path)}", err) from err
            raise ctx.os_failure(f"Failed to openat({ctx.shown(item.path)})", e) from e
        try:
            st = os.fstat(fd)
            try:
                with chase(source, root_fd=ctx.root_fd, flags=ChaseFlags.NOFOLLOW) as src:
                    a = src.st
            except OSError as e:
                raise ctx.os_failure(f"Failed to stat({source})", e) from e
            if stat.S_IFMT(st.st_mode) != stat.S_IFMT(a.st_mode):
                ctx.debug(f"Can't copy to {ctx.shown(item.path)}, file exists already and is of different type")
                return
            set_perms(ctx, item, fd, item.path, st, Creation.COPIED)
        finally:
            os.close(fd)
