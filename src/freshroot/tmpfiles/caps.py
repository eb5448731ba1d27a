"""File capabilities for k and K lines: the argument in cap_from_text(3) form, written as the
``security.capability`` extended attribute (VFS_CAP_REVISION_2), as libcap's cap_set_fd does.

A bad capability text is a warning (the line does nothing), as a bad ACL is. Symlinks and
anything but regular files are skipped: file capabilities only mean something on programs.
"""

from __future__ import annotations

import os
import re
import stat
import struct

from freshroot.fs import nodes
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
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
_CLAUSE = re.compile(r"^([^=+-]*)((?:[=+-][eip]*)+)$")


class CapabilityTextError(ValueError):
    pass


def parse(text: str) -> tuple[int, int, int]:
    """cap_from_text: (effective, permitted, inheritable) bit sets."""
    sets = {"e": 0, "p": 0, "i": 0}
    for clause in text.lower().split():
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
    return sets["e"], sets["p"], sets["i"]


def encode(effective: int, permitted: int, inheritable: int) -> bytes:
    magic = VFS_CAP_REVISION_2 | (VFS_CAP_FLAGS_EFFECTIVE if effective else 0)
    return struct.pack("<IIIII", magic, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       permitted >> 32, inheritable >> 32)


def fd_set_caps(
    ctx: Context, item: Item, fd: int, path: str, st: os.stat_result | None, creation: Creation
) -> None:
    del creation
    try:
        value = encode(*parse(item.argument or ""))
    except CapabilityTextError as e:
        ctx.warn(f"{item.location}: Failed to parse capabilities '{item.argument}', ignoring: {e}")
        return
    effective, permitted, inheritable = parse(item.argument or "")
    if effective and effective != permitted | inheritable:
        # libcap refuses to store an effective set that is neither empty nor everything.
        raise ctx.error("Inconsistent effective bits")
    if st is None:
        st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        ctx.debug(f"Skipping capabilities on {ctx.shown(path)}: not a regular file.")
        return
    ctx.action("Would set", "Setting", f"capabilities '{item.argument}' on {ctx.shown(path)}")
    if ctx.dry_run:
        return
    try:
        nodes.set_xattr_fd(fd, "security.capability", value)
    except OSError as e:
        raise ctx.os_failure(f"Failed to set capabilities on {ctx.shown(path)}", e) from e


def path_set_caps(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    path_action(ctx, item, path, fd_set_caps, creation)
