"""``[disk]``: the declaration of the install disk's partitions, parsed and checked.

```toml
[disk]
device = "/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T123456"  # or --device
serial = "S64ANS0T123456"   # refuse any other disk
min-size = "900G"           # or size = exact bytes
[disk.partitions.esp]
type = "esp"
format = "vfat"
size = "512M"
mount = "/boot/efi"
[disk.partitions.root]
type = "root"
format = "btrfs"
mount = "/"
subvolumes = { persist = "/persist" }
```

Each partition becomes one repart.d file (freshroot.disk.repart), in the order written.
Sizes are bytes or a number with K, M, G or T (powers of 1024, as systemd-repart reads them).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from freshroot.config.table import Table
from freshroot.errors import ConfigError

KEYS = frozenset({"device", "serial", "size", "min-size", "seed", "empty", "partitions"})
PARTITION_KEYS = frozenset({"type", "format", "label", "size", "min-size", "max-size", "weight", "mount",
                            "options", "subvolumes"})
# systemd-repart --empty=: what it may do with a disk that has no partition table, or one.
# "force" erases the disk's partition table and everything on it: only when declared.
EMPTY = ("allow", "require", "force")
FORMATS = ("vfat", "ext4", "btrfs", "xfs", "swap")
# repart.d Type= identifiers (systemd 252; the architecture-specific root-*/usr-* forms too).
_ARCHES = ("x86-64", "x86", "arm64", "arm", "ia64", "loongarch64", "riscv32", "riscv64")
TYPES = frozenset({"esp", "xbootldr", "swap", "home", "srv", "var", "tmp", "linux-generic",
                   "root", "root-verity", "usr", "usr-verity",
                   *(f"{k}-{a}" for k in ("root", "root-verity", "usr", "usr-verity") for a in _ARCHES)})
_SIZE = re.compile(r"([0-9]+)\s*([KMGT]?)(?:I?B)?")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SUBVOLUME = re.compile(r"[A-Za-z0-9@_+:.-]+(/[A-Za-z0-9@_+:.-]+)*")
_OPTION = re.compile(r"[A-Za-z0-9_=.:/@+-]+")
LABEL_MAX = 36  # GPT partition names are 36 UTF-16 units


@dataclass(frozen=True, slots=True)
class PartitionDecl:
    """One [disk.partitions] entry, turned into a repart.d file."""
    name: str  # its key under [disk.partitions]; the repart.d file is named after it
    type: str
    format: str | None
    label: str
    size_min: int | None
    size_max: int | None
    weight: int | None
    mount: str | None  # where it is mounted in the new root ("/" for the root); None: not mounted
    options: tuple[str, ...]
    subvolumes: tuple[tuple[str, str], ...]  # btrfs: (subvolume, mount point), also mounted


@dataclass(frozen=True, slots=True)
class DiskLayout:
    """The [disk] section: which disk, how big it must be, and its partitions."""
    device: str | None
    serial: str | None
    size: int | None  # the disk must be exactly this big ...
    min_size: int | None  # ... or at least this big
    seed: str | None  # systemd-repart --seed; None: derived from the host name
    empty: str
    partitions: tuple[PartitionDecl, ...]

    def root(self) -> PartitionDecl | None:
        return next((p for p in self.partitions if p.mount == "/"), None)

    def mount_points(self) -> list[str]:
        """Every mount point the layout makes: partitions and btrfs subvolumes."""
        return [*(p.mount for p in self.partitions if p.mount and p.mount != "swap"),
                *(m for p in self.partitions for _, m in p.subvolumes)]


def parse_size(value: object) -> int | None:
    """``"512M"``, ``"1G"``, ``"2TiB"``, or an integer: bytes (None when it is not a size)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE.fullmatch(value.strip().upper())
    if match is None:
        return None
    size = int(match.group(1)) * _UNITS[match.group(2)]
    return size if size > 0 else None


def _size(t: Table, key: str) -> int | None:
    if key not in t:
        return None
    size = parse_size(t.raw(key))
    if size is None:
        raise t.error(f"{t.name(key)} must be a size: bytes, or a number with K, M, G or T (\"512M\"), "
                      f"not {t.raw(key)!r}", key)
    return size


def _mount_point(t: Table, value: str, *keys: str) -> str:
    if not value.startswith("/") or "//" in value or any(p in (".", "..") for p in value.split("/")) \
            or any(c.isspace() or c == "\\" for c in value) or (value != "/" and value.endswith("/")):
        raise t.error(f"{t.name(*keys)} must be an absolute, normalized path without spaces, not {value!r}", *keys)
    return value


def _partition(t: Table, name: str) -> PartitionDecl:
    t.reject_unknown(PARTITION_KEYS)
    if not _NAME.fullmatch(name):
        raise t.error(f"{t.name()}: a partition's name must be letters, digits and _ . - (it names the repart.d "
                      "file)")
    kind = t.req_str("type")
    try:
        uuid.UUID(kind)
    except ValueError:
        if kind not in TYPES:
            raise t.error(f"{t.name('type')} must be a repart.d Type= (esp, xbootldr, swap, root, home, srv, var, "
                          f"tmp, linux-generic, usr, root-x86-64...) or a GPT type UUID, not {kind!r}",
                          "type") from None
    fmt = t.get_str("format")
    if fmt is not None and fmt not in FORMATS:
        raise t.error(f"{t.name('format')} must be one of {', '.join(FORMATS)}, not {fmt!r}", "format")
    if kind == "esp" and fmt not in (None, "vfat"):
        raise t.error(f"{t.name('format')}: an ESP is FAT, the one file system UEFI firmware reads, not {fmt}",
                      "format", hint='format = "vfat"')
    if kind == "swap" and fmt not in (None, "swap"):
        raise t.error(f"{t.name('format')}: a swap partition is formatted as swap, not {fmt}", "format")
    label = t.get_str("label", name)
    assert label is not None
    if not label or len(label) > LABEL_MAX or not label.isprintable():
        raise t.error(f"{t.name('label')} must be 1 to {LABEL_MAX} printable characters", "label")
    size = _size(t, "size")
    size_min, size_max = _size(t, "min-size"), _size(t, "max-size")
    if size is not None:
        if size_min is not None or size_max is not None:
            raise t.error(f"{t.name('size')} is the exact size: not with min-size or max-size", "size")
        size_min = size_max = size
    if size_min is not None and size_max is not None and size_min > size_max:
        raise t.error(f"{t.name('min-size')} is more than max-size", "min-size")
    weight = t.get_int("weight")
    if weight is not None and not 0 <= weight <= 1000 * 1000:
        raise t.error(f"{t.name('weight')} must be between 0 and 1000000 (repart's Weight=)", "weight")
    if weight is not None and size is not None:
        raise t.error(f"{t.name('weight')} shares out free space, and size is exact: it would mean nothing",
                      "weight", hint="drop weight, or give min-size/max-size instead of size")
    mount = t.get_str("mount")
    if mount is not None:
        if fmt is None or fmt == "swap":
            raise t.error(f"{t.name('mount')}: only a partition with a file system (format) is mounted", "mount")
        mount = _mount_point(t, mount, "mount")
    options = tuple(t.get_str_list("options"))
    for i, option in enumerate(options):
        if not _OPTION.fullmatch(option) or option.startswith("subvol"):
            raise t.error(f"{t.name('options', i)}: {option!r} is no mount option freshroot writes to fstab "
                          "(subvol= comes from subvolumes and [root])", "options", i)
    subvolumes: list[tuple[str, str]] = []
    if "subvolumes" in t:
        if fmt != "btrfs":
            raise t.error(f"{t.name('subvolumes')}: only a btrfs partition has subvolumes", "subvolumes")
        sub = t.get_table("subvolumes")
        for key in sub:
            if not _SUBVOLUME.fullmatch(key) or any(p in (".", "..") for p in key.split("/")):
                raise sub.error(f"{sub.name(key)}: a subvolume path is names of letters, digits and @_+:.- "
                                "between slashes", key)
            point = sub.get_str(key)
            assert point is not None
            subvolumes.append((key, _mount_point(sub, point, key)))
    if options and mount is None and not subvolumes and fmt != "swap":
        raise t.error(f"{t.name('options')}: the partition is not mounted (no mount, no subvolumes), so its "
                      "options would mean nothing", "options", hint="add mount = \"/where\", or drop options")
    return PartitionDecl(name, kind, fmt, label, size_min, size_max, weight, mount, options, tuple(subvolumes))


def parse_disk(declaration: Table) -> DiskLayout | None:
    """The ``[disk]`` section; None when the declaration has none."""
    if "disk" not in declaration:
        return None
    t = declaration.get_table("disk")
    t.reject_unknown(KEYS)
    device = t.get_str("device")
    if device is not None and not device.startswith("/dev/disk/by-id/"):
        raise t.error(f"{t.name('device')} must be a /dev/disk/by-id/ name (device names such as /dev/sda change "
                      f"between boots), not {device!r}", "device")
    serial = t.get_str("serial")
    if serial is not None and (not serial or not serial.isprintable() or serial != serial.strip()):
        raise t.error(f"{t.name('serial')} must be the disk's serial as /sys or the by-id name shows it", "serial")
    size, min_size = _size(t, "size"), _size(t, "min-size")
    if size is not None and min_size is not None:
        raise t.error(f"{t.name('size')} and min-size: declare one (size is exact)", "size")
    seed = t.get_str("seed")
    if seed is not None:
        try:
            seed = str(uuid.UUID(seed))
        except ValueError:
            raise t.error(f"{t.name('seed')} must be a UUID (systemd-repart --seed), not {seed!r}", "seed") from None
    empty = t.get_str("empty", "allow")
    assert empty is not None
    if empty not in EMPTY:
        raise t.error(f"{t.name('empty')} must be one of {', '.join(EMPTY)} (\"force\" erases the disk), "
                      f"not {empty!r}", "empty")
    partitions = [_partition(sub, name) for name, sub in t.get_table("partitions").tables()]
    layout = DiskLayout(device, serial, size, min_size, seed, empty, tuple(partitions))
    seen: dict[str, str] = {}
    for p in partitions:
        points = ([p.mount] if p.mount else []) + [m for _, m in p.subvolumes]
        for point in points:
            if point in seen:
                parts = t.get_table("partitions").get_table(p.name)
                raise parts.error(f"{parts.name()}: {point} is mounted twice (also by {seen[point]})")
            seen[point] = p.name
    if layout.root() is None and seen:
        raise t.error(f"{t.name('partitions')}: no partition is mounted on \"/\": the others are mounted below it",
                      "partitions")
    return layout


def root_subvolume(declaration: Table, layout: DiskLayout) -> str | None:
    """The btrfs subvolume the root is mounted from: [root]'s with wipe = "btrfs", which needs
    the partition mounted on "/" to be btrfs."""
    from freshroot.root.model import parse_root

    root = parse_root(declaration)
    if root.wipe != "btrfs":
        return None
    part = layout.root()
    if part is None or part.format != "btrfs":
        raise ConfigError('[root] wipe = "btrfs" needs the partition mounted on "/" to be format = "btrfs"',
                          location=declaration.location("disk"))
    return root.subvolume


def check(declaration: Table) -> DiskLayout | None:
    """For ``freshroot config check``: [disk], and what [root] asks of it."""
    layout = parse_disk(declaration)
    if layout is not None:
        root_subvolume(declaration, layout)
    return layout
