"""File capabilities for k and K lines: the argument in cap_from_text(3) form, written as the
``security.capability`` extended attribute (VFS_CAP_REVISION_2), as libcap's cap_set_fd does.

A bad capability text is a warning when the line is read (freshroot.tmpfiles.parse), and the
line does nothing, as with a bad ACL. Symlinks and
anything but regular files are skipped: file capabilities only mean something on programs.
"""

from __future__ import annotations

import os
import re
import stat
import struct

from freshroot.fs import xattr
from freshroot.tmpfiles.context import Context, Creation
from freshroot.tmpfiles.model import Item
from freshroot.tmpfiles.perms import path_action

NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
    "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
    "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
    "checkpoint_restore",
)
ALL = (1 << len(NAMES)) - 1
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
_CLAUSE = re.compile(r"^([^=+-]*)((?:[=+-][eip]*)+)$")


class CapabilityTextError(ValueError):
    pass


def parse(text: str, start: tuple[int, int, int] = (0, 0, 0)) -> tuple[int, int, int, int | None]:
    """cap_from_text applied on top of ``start``: (effective, permitted, inheritable, rootuid)."""
    sets = {"e": start[0], "p": start[1], "i": start[2]}
    rootuid: int | None = None
    for clause in text.lower().split():
        if clause.startswith("rootuid="):
            value = clause.removeprefix("rootuid=")
            if not value.isdigit():
                raise CapabilityTextError(f"bad rootuid in {clause!r}")
            rootuid = int(value)
            continue
        m = _CLAUSE.match(clause)
        if m is None:
            raise CapabilityTextError(f"cannot parse capability clause {clause!r}")
        names, ops = m.group(1), m.group(2)
        bits = 0
        if names in ("", "all"):
            bits = ALL
        else:
            for name in names.split(","):
                short = name.removeprefix("cap_")
                if short in NAMES:
                    bits |= 1 << NAMES.index(short)
                else:
                    raise CapabilityTextError(f"unknown capability {name!r}")
        for op, flags in re.findall(r"([=+-])([eip]*)", ops):
            if op == "=":
                for k in sets:
                    sets[k] &= ~bits
            for f in flags:
                sets[f] = sets[f] & ~bits if op == "-" else sets[f] | bits
            if op in "+-" and not flags:
                raise CapabilityTextError(f"'{op}' needs flags in {clause!r}")
    return sets["e"], sets["p"], sets["i"], rootuid


def encode(effective: int, permitted: int, inheritable: int, rootuid: int | None = None) -> bytes:
    """The security.capability value: revision 2, or 3 when a namespace root uid is given."""
    revision = VFS_CAP_REVISION_2 if rootuid is None else VFS_CAP_REVISION_3
    magic = revision | (VFS_CAP_FLAGS_EFFECTIVE if effective else 0)
    data = struct.pack("<IIIII", magic, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       permitted >> 32, inheritable >> 32)
    return data if rootuid is None else data + struct.pack("<I", rootuid)


def decode(value: bytes) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of a security.capability value (the effective
    flag stands for "everything permitted or inheritable", as libcap reads it)."""
    if len(value) < 12:
        return 0, 0, 0
    magic, p_lo, i_lo = struct.unpack_from("<III", value)
    p_hi, i_hi = struct.unpack_from("<II", value, 12) if len(value) >= 20 else (0, 0)
    permitted, inheritable = p_lo | p_hi << 32, i_lo | i_hi << 32
    effective = permitted | inheritable if magic & VFS_CAP_FLAGS_EFFECTIVE else 0
    return effective, permitted, inheritable


def fd_set_caps(
    ctx: Context, item: Item, fd: int, path: str, st: os.stat_result | None, creation: Creation
) -> None:
    del creation
    start = (0, 0, 0)
    if item.plus:  # k+: change the listed capabilities, keep the rest
        try:
            current = xattr.get_fd(fd, "security.capability")
        except OSError:
            current = None
        start = (0, 0, 0) if current is None else decode(current)
    try:
        effective, permitted, inheritable, rootuid = parse(item.argument or "", start)
    except CapabilityTextError as e:
        # The parse of the line has warned already (freshroot.tmpfiles.parse, as systemd does).
        ctx.debug(f"Failed to parse capabilities '{item.argument}', ignoring: {e}")
        return
    if st is None:
        st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        ctx.debug(f"Skipping file capabilities for '{ctx.shown(path)}' (inode type does not support file "
                  "capabilities).")
        return
    value = encode(effective, permitted, inheritable, rootuid)
    if effective and effective != permitted | inheritable:
        # libcap refuses to store an effective set that is neither empty nor everything.
        raise ctx.error("Inconsistent effective bits")
    ctx.action("Would set", "Setting", f"capabilities '{item.argument}' on {ctx.shown(path)}")
    if ctx.dry_run:
        return
    try:
        xattr.set_fd(fd, "security.capability", value)
    except OSError as e:
        raise ctx.os_failure(f"Failed to set capabilities on {ctx.shown(path)}", e) from e


def path_set_caps(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    path_action(ctx, item, path, fd_set_caps, creation)
