"""The install disk, checked before systemd-repart touches it.

A name such as /dev/sda or /dev/nvme0n1 says which disk the kernel found first this boot,
not which disk it is: disko users have wiped the wrong NVMe that way. So the device must be
a link in /dev/disk/by-id (udev's names from model and serial), it must be a whole disk
(not a partition), nothing on it may be in use (mounted, swap, device mapper, md), and the
declared serial and size must match what the kernel reports.
"""

from __future__ import annotations

import os

from freshroot.disk.model import DiskLayout
from freshroot.errors import OperationError, UsageError
from freshroot.facts.blockdev import Disk, by_id_dir, read_disks, serial_from_by_id
from freshroot.facts.machine import human
from freshroot.hints import command


def resolve(device: str) -> Disk:
    """The whole disk ``device`` (a /dev/disk/by-id/ link) names; refused otherwise."""
    directory = by_id_dir().rstrip("/")
    parent, name = os.path.split(device.rstrip("/"))
    if os.path.normpath(parent) != os.path.normpath(directory) or not name or name.startswith("."):
        hint = f"`{command('facts')}` lists each disk with its by-id names"
        raise UsageError(f"--device {device}: not a name in {directory}/ (names such as /dev/sda change between "
                         "boots)", hint=hint)
    if not os.path.islink(device):
        raise UsageError(f"--device {device}: no such link in {directory}/",
                         hint=f"`{command('facts')}` lists each disk with its by-id names")
    try:
        st = os.stat(device)
    except OSError as e:
        raise OperationError(f"--device {device}: {e.strerror}") from None
    if (st.st_mode & 0o170000) != 0o060000:
        raise UsageError(f"--device {device}: not a block device")
    dev = (os.major(st.st_rdev), os.minor(st.st_rdev))
    disk = next((d for d in read_disks() if d.dev == dev), None)
    if disk is None:
        raise UsageError(f"--device {device}: {os.path.realpath(device)} is a partition or no disk of /sys/block; "
                         "name the whole disk")
    return disk


def _below(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def check(disk: Disk, device: str, layout: DiskLayout, *, mount_root: str | None = None) -> None:
    """Refuse a disk in use, or one whose serial or size is not the declared one. Mounts at
    or below ``mount_root`` are a previous ``disk apply``'s and do not count (it checks that
    nothing is left to change on a disk it mounted)."""
    top = os.path.realpath(mount_root) if mount_root else None
    busy = [why for why in disk.in_use() if top is None or not _below(why.rsplit(" is mounted on ", 1)[-1], top)]
    if busy:
        raise OperationError(f"{device} ({disk.path}) is in use: {'; '.join(busy)}",
                             hint="unmount its file systems (and swapoff) first; freshroot never repartitions "
                                  "a disk in use")
    if layout.serial is not None:
        serials = {s for s in (disk.serial, serial_from_by_id(os.path.basename(device))) if s}
        if layout.serial not in serials:
            raise OperationError(f"{device}: serial {' / '.join(sorted(serials)) or '(none)'} is not the declared "
                                 f"serial {layout.serial}: refusing to touch another disk than the one declared")
    if layout.size is not None and disk.size != layout.size:
        raise OperationError(f"{device}: {disk.size} bytes ({human(disk.size)}), not the declared size "
                             f"{layout.size} bytes ({human(layout.size)})")
    if layout.min_size is not None and disk.size < layout.min_size:
        raise OperationError(f"{device}: {disk.size} bytes ({human(disk.size)}), less than the declared min-size "
                             f"{layout.min_size} bytes ({human(layout.min_size)})")
    if disk.read_only:
        raise OperationError(f"{device} ({disk.path}) is read-only")
