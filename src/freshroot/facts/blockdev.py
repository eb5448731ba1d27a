"""Block devices as the kernel and udev name them: /sys/block, /dev/disk/by-id, mountinfo.

Everything is read from sysfs and the by-id directory, never from a tool's output, so it
works in a rescue system without udev's database (or lsblk). Device names (sda, nvme0n1)
change between boots; the by-id names are built by udev from the model and serial and do
not, which is why ``disk apply`` takes nothing else.

``FRESHROOT_DEV_BY_ID`` replaces /dev/disk/by-id, for tests only: loop devices have no by-id
link, so a test makes a directory of links (``virtio-SERIAL -> /dev/loop3``) and points it
there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

SYS_BLOCK = "/sys/block"
SYS_CLASS_BLOCK = "/sys/class/block"
BY_ID = "/dev/disk/by-id"
SECTOR = 512  # /sys/block/*/size counts 512-byte sectors whatever the device's own size
# Devices that are no disk to install on: RAM disks, zram swap, CD-ROMs are kept, loop
# devices are listed (a rescue system's own image is one) but marked virtual.
_SKIP = re.compile(r"^(ram|zram)[0-9]+$")
# udev's by-id names: BUS-MODEL_SERIAL (ata, scsi, usb, nvme) or virtio-SERIAL; the
# serial is the last "_" field, and "-partN" names a partition.
_PART_SUFFIX = re.compile(r"-part[0-9]+$")


def by_id_dir() -> str:
    return os.environ.get("FRESHROOT_DEV_BY_ID") or BY_ID


def read_text(path: str) -> str | None:
    """A small sysfs or proc file, stripped; None when it is missing or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode("utf-8", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def _int(path: str) -> int | None:
    text = read_text(path)
    return int(text) if text is not None and text.isdigit() else None


def _dev(path: str) -> tuple[int, int] | None:
    text = read_text(os.path.join(path, "dev"))
    if text is None or ":" not in text:
        return None
    major, minor = text.split(":", 1)
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of a block device, as sysfs and udev show it."""
    name: str  # sda1, nvme0n1p2
    number: int
    start: int  # bytes
    size: int  # bytes
    dev: tuple[int, int] | None
    by_id: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()
    fstype: str | None = None  # of a mounted one (mountinfo); unmounted ones are not probed


@dataclass(frozen=True, slots=True)
class Disk:
    """One block device, as sysfs and udev show it."""
    name: str  # sda, nvme0n1, vda, loop0
    size: int  # bytes
    dev: tuple[int, int] | None
    model: str | None
    serial: str | None
    removable: bool
    read_only: bool
    rotational: bool
    virtual: bool  # loop, device mapper, md: no hardware behind it
    by_id: tuple[str, ...] = ()  # full paths of the links to the whole disk
    partitions: tuple[Partition, ...] = ()
    mounts: tuple[str, ...] = ()  # of the whole disk (a file system without a partition table)
    holders: tuple[str, ...] = ()  # device mapper, md, ... built on it or its partitions
    swap: bool = False  # the disk or a partition is swap in use

    @property
    def path(self) -> str:
        return f"/dev/{self.name}"

    def in_use(self) -> list[str]:
        """What keeps the disk busy, in words: mounts, swap, holders."""
        why = [f"{self.path} is mounted on {m}" for m in self.mounts]
        why += [f"/dev/{p.name} is mounted on {m}" for p in self.partitions for m in p.mounts]
        why += [f"{self.path} is used by {h}" for h in self.holders]
        if self.swap:
            why.append(f"{self.path} holds swap in use")
        return why


def serial_from_by_id(name: str) -> str | None:
    """The serial udev put into a by-id name: ``virtio-SERIAL``, ``nvme-MODEL_SERIAL``,
    ``ata-MODEL_SERIAL``, ``scsi-0QEMU_QEMU_HARDDISK_SERIAL``. None for wwn-/eui- names."""
    name = _PART_SUFFIX.sub("", name)
    bus, sep, rest = name.partition("-")
    if not sep or bus in ("wwn", "nvme-eui", "eui", "dm", "md", "lvm") or rest.startswith("eui."):
        return None
    if bus == "virtio":
        return rest or None
    return rest.rsplit("_", 1)[-1] or None


def by_id_links(directory: str | None = None) -> dict[tuple[int, int], list[str]]:
    """Device number -> the by-id links that name it (full paths, sorted)."""
    directory = directory or by_id_dir()
    out: dict[tuple[int, int], list[str]] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        path = os.path.join(directory, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if os.path.islink(path) and (st.st_mode & 0o170000) == 0o060000:
            out.setdefault((os.major(st.st_rdev), os.minor(st.st_rdev)), []).append(path)
    return out


def _mounts() -> tuple[dict[tuple[int, int], list[str]], dict[tuple[int, int], str]]:
    """Device number -> mount points, and -> file system type, from /proc/self/mountinfo."""
    from freshroot.fs.mount import mountinfo

    points: dict[tuple[int, int], list[str]] = {}
    types: dict[tuple[int, int], str] = {}
    for m in mountinfo():
        key = (os.major(m.dev), os.minor(m.dev))
        points.setdefault(key, []).append(m.mount_point)
        types.setdefault(key, m.fstype)
    return points, types


def _swaps() -> set[str]:
    text = read_text("/proc/swaps") or ""
    return {line.split()[0] for line in text.splitlines()[1:] if line.split()}


def _serial(sys_dir: str) -> str | None:
    for attr in ("device/serial", "serial"):  # nvme, virtio (and some scsi)
        text = read_text(os.path.join(sys_dir, attr))
        if text:
            return text
    vpd = os.path.join(sys_dir, "device/vpd_pg80")  # SCSI/ATA: the unit serial number page
    try:
        with open(vpd, "rb") as f:
            raw = f.read(256)
        if len(raw) > 4:
            return raw[4:4 + raw[3]].decode("ascii", "replace").strip() or None
    except OSError:
        pass
    return None


def read_disks(sys_block: str = SYS_BLOCK) -> list[Disk]:
    """Every block device of /sys/block (but RAM disks), with its partitions and what uses it."""
    ids = by_id_links()
    points, types = _mounts()
    swaps = _swaps()
    out: list[Disk] = []
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return out
    for name in names:
        if _SKIP.match(name):
            continue
        d = os.path.join(sys_block, name)
        dev = _dev(d)
        if name.startswith("loop") and not os.path.exists(os.path.join(d, "loop")):
            continue  # a loop device with nothing attached
        parts: list[Partition] = []
        try:
            children = sorted(os.listdir(d))
        except OSError:
            children = []
        for child in children:
            p = os.path.join(d, child)
            number = _int(os.path.join(p, "partition"))
            if number is None:
                continue
            pdev = _dev(p)
            parts.append(Partition(child, number, (_int(os.path.join(p, "start")) or 0) * SECTOR,
                                   (_int(os.path.join(p, "size")) or 0) * SECTOR, pdev,
                                   tuple(ids.get(pdev, ())) if pdev else (),
                                   tuple(points.get(pdev, ())) if pdev else (),
                                   types.get(pdev) if pdev else None))
        parts.sort(key=lambda p: p.number)
        try:
            holders = tuple(sorted({h for x in [d, *(os.path.join(d, p.name) for p in parts)]
                                    for h in os.listdir(os.path.join(x, "holders"))}))
        except OSError:
            holders = ()
        links = tuple(ids.get(dev, ())) if dev else ()
        serial = _serial(d) or next((s for s in map(serial_from_by_id, map(os.path.basename, links)) if s), None)
        out.append(Disk(
            name=name, size=(_int(os.path.join(d, "size")) or 0) * SECTOR, dev=dev,
            model=read_text(os.path.join(d, "device/model")), serial=serial,
            removable=read_text(os.path.join(d, "removable")) == "1",
            read_only=read_text(os.path.join(d, "ro")) == "1",
            rotational=read_text(os.path.join(d, "queue/rotational")) == "1",
            virtual=not os.path.exists(os.path.join(d, "device")),
            by_id=links, partitions=tuple(parts),
            mounts=tuple(points.get(dev, ())) if dev else (),
            holders=holders,
            swap=any(s in swaps for s in (f"/dev/{name}", *(f"/dev/{p.name}" for p in parts))),
        ))
    return out


def disk_of(path: str) -> Disk | None:
    """The whole disk the block device ``path`` is (None: not a whole disk of /sys/block)."""
    st = os.stat(path)
    if (st.st_mode & 0o170000) != 0o060000:
        return None
    dev = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return next((d for d in read_disks() if d.dev == dev), None)

