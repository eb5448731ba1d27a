"""The machine a declaration is about to be installed on: disks, memory, the running system,
the tools it has, its OS, architecture and boot mode. Read from /proc, /sys and os-release
only, so a bare rescue system answers too.

The JSON document (``freshroot facts --json``) is versioned: ``version`` changes when a key
changes meaning or goes away (new keys may be added without it). docs/remote-install.md
lists the keys.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from typing import Any

from freshroot.facts.blockdev import Disk, read_disks, read_text
from freshroot.output import JSON_VERSION

# The schema version of every --json document (docs/json.md), this one's included.
VERSION = JSON_VERSION
# What installing a machine may need, by what it is for (docs/remote-install.md).
TOOLS = (
    "systemd-repart", "sfdisk", "partx", "mmdebstrap", "debootstrap", "dnf", "pacstrap", "tar",
    "systemd-dissect", "btrfs", "mkfs.btrfs", "mkfs.ext4", "mkfs.xfs", "mkfs.vfat", "mkswap",
    "bootctl", "grub-install", "update-initramfs", "dracut", "mkinitcpio", "ssh-keygen", "python3",
)
# File systems a root runs from when it is not an installed system: a live or rescue image.
RESCUE_ROOT_TYPES = frozenset({"tmpfs", "ramfs", "rootfs", "overlay", "squashfs", "aufs", "iso9660", "nfs", "nfs4"})
# Directories live systems leave: live-boot (Debian/Ubuntu, Hetzner/OVH rescue), archiso,
# dracut's dmsquash-live (Fedora live), NixOS's installer.
LIVE_MARKERS = ("/run/live", "/lib/live/mount", "/run/archiso", "/run/initramfs/live", "/etc/NIXOS_LUSTRATE",
                "/run/rootfsbase")
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class Rescue:
    """Whether the machine runs a rescue or live system, and what said so."""
    rescue: bool
    root_fstype: str | None
    markers: tuple[str, ...]  # the live markers found, and "boot=live" from the command line


@dataclass(frozen=True, slots=True)
class Facts:
    """What a host is: its name, kernel, architecture, boot mode, OS, memory, disks."""
    hostname: str
    kernel: str
    architecture: str  # uname's machine: x86_64, aarch64
    boot_mode: str  # "uefi" or "bios"
    os: dict[str, str]  # os-release keys: ID, VERSION_ID, PRETTY_NAME, ID_LIKE...
    memory: dict[str, int]  # bytes: total, available
    rescue: Rescue
    tools: dict[str, str | None]  # name -> its path, or None
    disks: tuple[Disk, ...]

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"version": VERSION, **asdict(self)}
        document["disks"] = [_disk_json(d) for d in self.disks]
        return document


def _disk_json(d: Disk) -> dict[str, Any]:
    return {
        "name": d.name, "path": d.path, "by_id": list(d.by_id), "serial": d.serial, "model": d.model,
        "size": d.size, "removable": d.removable, "read_only": d.read_only, "rotational": d.rotational,
        "virtual": d.virtual, "mounts": list(d.mounts), "holders": list(d.holders), "swap": d.swap,
        "in_use": bool(d.in_use()),
        "partitions": [{"name": p.name, "path": f"/dev/{p.name}", "number": p.number, "start": p.start,
                        "size": p.size, "by_id": list(p.by_id), "mounts": list(p.mounts), "fstype": p.fstype}
                       for p in d.partitions],
    }


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    """os-release(5): KEY=value lines, values shell-quoted."""
    import shlex

    text = read_text(path)
    if text is None and path == "/etc/os-release":
        text = read_text("/usr/lib/os-release")
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#") or not key.isidentifier():
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        out[key] = words[0] if words else ""
    return out


def memory(path: str = "/proc/meminfo") -> dict[str, int]:
    fields = {"MemTotal": "total", "MemAvailable": "available", "SwapTotal": "swap"}
    out: dict[str, int] = {}
    for line in (read_text(path) or "").splitlines():
        key, _, rest = line.partition(":")
        words = rest.split()
        if key in fields and words and words[0].isdigit():
            out[fields[key]] = int(words[0]) * 1024
    return out


def rescue() -> Rescue:
    from freshroot.fs.mount import mountinfo

    root = [m for m in mountinfo() if m.mount_point == "/"]
    fstype = root[-1].fstype if root else None  # the last one mounted on / is what we see
    markers = [m for m in LIVE_MARKERS if os.path.lexists(m)]
    cmdline = (read_text("/proc/cmdline") or "").split()
    markers += [w for w in cmdline if w in ("boot=live", "rd.live.image", "archisobasedir") or
                w.startswith("archisobasedir=")]
    return Rescue(fstype in RESCUE_ROOT_TYPES or bool(markers), fstype, tuple(markers))


def tools(path: str | None = None) -> dict[str, str | None]:
    """Each tool of :data:`TOOLS` and where it is: PATH, then the system directories (a
    rescue shell's PATH may lack /usr/sbin)."""
    search = f"{path if path is not None else os.environ.get('PATH', '')}:{TOOL_PATH}"
    return {name: shutil.which(name, path=search) for name in TOOLS}


def gather() -> Facts:
    uname = os.uname()
    return Facts(
        hostname=uname.nodename, kernel=uname.release, architecture=uname.machine,
        boot_mode="uefi" if os.path.isdir("/sys/firmware/efi") else "bios",
        os=os_release(), memory=memory(), rescue=rescue(), tools=tools(), disks=tuple(read_disks()),
    )


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def text(f: Facts) -> str:
    """The facts for people."""
    lines = [
        f"host:     {f.hostname} ({f.os.get('PRETTY_NAME', 'unknown OS')}, {f.architecture}, kernel {f.kernel})",
        f"boot:     {f.boot_mode.upper()}",
        f"memory:   {human(f.memory.get('total', 0))} ({human(f.memory.get('available', 0))} available)",
        (f"rescue:   {'yes' if f.rescue.rescue else 'no'} (root on {f.rescue.root_fstype or '?'}"
         f"{'; ' + ', '.join(f.rescue.markers) if f.rescue.markers else ''})"),
        f"tools:    {' '.join(n for n, p in f.tools.items() if p) or '-'}",
        f"missing:  {' '.join(n for n, p in f.tools.items() if not p) or '-'}",
        "disks:",
    ]
    for d in f.disks:
        busy = d.in_use()
        what = ", ".join(x for x in (d.model, f"serial {d.serial}" if d.serial else None,
                                     "virtual" if d.virtual else None, "removable" if d.removable else None) if x)
        lines.append(f"  {d.path}  {human(d.size)}  {what}{'  IN USE' if busy else ''}")
        lines += [f"    {link}" for link in d.by_id]
        for p in d.partitions:
            mounted = f"  on {', '.join(p.mounts)}" if p.mounts else ""
            lines.append(f"    /dev/{p.name}  {human(p.size)}{mounted}")
    return "\n".join(lines) + "\n"
