"""File capabilities for k and K lines: the argument in systemd 262's own capability text
dialect, written as the ``security.capability`` extended attribute (VFS_CAP_REVISION_2, or
revision 3 with ``rootuid=``).

systemd 262 no longer uses libcap's cap_from_text(3); its parser (probed clause by clause in
tests/tmpfiles/test_caps_text.py) reads the text as words split at blanks, with quotes and
backslashes removed (extract_first_word with EXTRACT_UNQUOTE|EXTRACT_RELAX). Each word is
either ``rootuid=N`` (a decimal uid; the last one wins) or ``NAMES OP FLAGS``:

- NAMES: comma-separated capabilities, empty elements skipped. A name is a ``cap_`` name in
  any case (``CAP_KILL``), or a number (C ``strtol`` base 0: ``12``, ``0xc``, ``014``) up to 62;
  a name without ``cap_`` is refused. NAMES empty (``=ep``) or ``all`` (lower case) means every
  capability the kernel knows (/proc/sys/kernel/cap_last_cap).
- OP: exactly one of ``=``, ``+``, ``-``. ``=`` clears the named capabilities in what the file
  had (``k+``) and adds the flags, but never undoes an earlier word of the same text
  (``cap_setuid=ep cap_setuid=p`` keeps ``ep``, unlike cap_from_text); ``-`` takes the flags
  away from both.
- FLAGS: any of ``e``, ``i``, ``p`` in lower case, repeated or none at all.

A bad capability text is a warning when the line is read (freshroot.tmpfiles.parse), and the
line does nothing, as with a bad ACL. Symlinks and anything but regular files are skipped:
file capabilities only mean something on programs.
"""

from __future__ import annotations

import errno
import os
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
_BY_NAME = {f"cap_{n}": i for i, n in enumerate(NAMES)}
CAP_LIMIT = 62  # systemd keeps capabilities in a uint64_t with all ones meaning "unset"
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
_WHITESPACE = " \t\n\r"


class CapabilityTextError(ValueError):
    """A capability text systemd refuses; ``errno`` is the one its warning names."""

    def __init__(self, message: str, code: int = errno.EINVAL) -> None:
        super().__init__(message)
        self.errno = code


def all_capabilities() -> int:
    """Every capability the running kernel knows, as systemd's all_capabilities()."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            last = min(int(f.read().strip()), CAP_LIMIT)
    except (OSError, ValueError):
        last = len(NAMES) - 1
    return (1 << (last + 1)) - 1


def _words(text: str) -> list[str]:
    """extract_first_word(EXTRACT_UNQUOTE|EXTRACT_RELAX) until the end: quotes removed
    anywhere in a word (an unclosed one runs to the end), a backslash keeps the next character
    as it is (a trailing one is dropped)."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            return words
        out: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\":
                if i + 1 < n:
                    out.append(text[i + 1])
                i += 2
            elif quote:
                if c == quote:
                    quote = ""
                else:
                    out.append(c)
                i += 1
            elif c in "'\"":
                quote = c
                i += 1
            elif c in _WHITESPACE:
                break
            else:
                out.append(c)
                i += 1
        words.append("".join(out))


def _number(name: str) -> int | None:
    """safe_atoi(): C strtol with base 0 over the whole name, None when it is not a number."""
    if name[:2] in ("0x", "0X"):
        digits, base = name[2:], 16
    elif name.startswith("0") and len(name) > 1:
        digits, base = name[1:], 8
    else:
        digits, base = name, 10
    if not digits or not all(c in "0123456789abcdefABCDEF"[:base if base <= 10 else 22] for c in digits):
        return None
    value = int(digits, base)
    return value if value < 1 << 31 else None


def _capability(name: str) -> int:
    number = _number(name)
    if number is not None:
        if number > CAP_LIMIT:
            raise CapabilityTextError(f"capability number {name!r} is out of range")
        return number
    found = _BY_NAME.get(name.lower())
    if found is None:
        raise CapabilityTextError(f"unknown capability {name!r}")
    return found


def _uid(value: str) -> int:
    """parse_uid(): decimal, no sign, no leading zero; -1 and 65535 are not uids."""
    if not value.isascii() or not value.isdigit() or (value.startswith("0") and value != "0"):
        raise CapabilityTextError(f"bad rootuid {value!r}")
    uid = int(value)
    if uid > 0xFFFFFFFF:
        raise CapabilityTextError(f"rootuid {value} is out of range", errno.ERANGE)
    if uid in (0xFFFFFFFF, 0xFFFF):
        raise CapabilityTextError(f"rootuid {value} is not a valid uid", errno.ENXIO)
    return uid


def parse(text: str, start: tuple[int, int, int] = (0, 0, 0)) -> tuple[int, int, int, int | None]:
    """The capability text applied on top of ``start``: (effective, permitted, inheritable,
    rootuid). Raises CapabilityTextError at the first word systemd refuses."""
    # What the words add, and what they take away from ``start`` (the file's capabilities
    # for k+): '=' takes the named capabilities out of all three sets of ``start`` but never
    # undoes what earlier words added; '-' undoes earlier additions and takes them out of ``start``.
    add = {"e": 0, "p": 0, "i": 0}
    drop = {"e": 0, "p": 0, "i": 0}
    rootuid: int | None = None
    words = _words(text)
    if not words:
        raise CapabilityTextError("no capabilities")
    for word in words:
        if word.startswith("rootuid="):
            rootuid = _uid(word.removeprefix("rootuid="))
            continue
        at = min((word.find(op) for op in "=+-" if op in word), default=-1)
        if at < 0:
            raise CapabilityTextError(f"no operator in {word!r}")
        names, op, flags = word[:at], word[at], word[at + 1:]
        if any(f not in "eip" for f in flags):
            raise CapabilityTextError(f"bad flags {flags!r} in {word!r}")
        if names in ("", "all"):
            bits = all_capabilities()
        else:
            bits = 0
            for name in names.split(","):
                if name == "all":
                    bits |= all_capabilities()
                elif name:
                    bits |= 1 << _capability(name)
        if op == "=":
            for f in drop:
                drop[f] |= bits
        for f in flags:
            if op == "-":
                add[f] &= ~bits
                drop[f] |= bits
            else:
                add[f] |= bits
    e, p, i = ((value & ~drop[f]) | add[f] for f, value in zip("epi", start, strict=True))
    return e, p, i, rootuid


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
