"""[disk]: the declaration, its repart.d files, the per-host seed and the fstab (no disk needed)."""

from __future__ import annotations

import tomllib

import pytest

from freshroot.config.table import Table
from freshroot.disk import mounts, repart
from freshroot.disk.model import parse_disk, parse_size
from freshroot.errors import ConfigError

LAYOUT = """\
[disk]
serial = "S1"
min-size = "10G"
[disk.partitions.esp]
type = "esp"
format = "vfat"
size = "512M"
mount = "/boot/efi"
[disk.partitions.swap]
type = "swap"
format = "swap"
size = "1G"
[disk.partitions.root]
type = "root"
format = "btrfs"
mount = "/"
weight = 2000
subvolumes = { persist = "/persist", "var/log" = "/var/log" }
"""


def table(text: str) -> Table:
    return Table(tomllib.loads(text), (), "t.toml", {})


def test_sizes() -> None:
    assert parse_size("512M") == 512 << 20
    assert parse_size("2GiB") == 2 << 30
    assert parse_size("1T") == 1 << 40
    assert parse_size(4096) == 4096
    for bad in ("", "M", "1.5G", "-1", "1P", 0, True):
        assert parse_size(bad) is None, bad


def test_definitions_in_declared_order() -> None:
    layout = parse_disk(table(LAYOUT))
    assert layout is not None
    files = repart.definitions(layout)
    assert list(files) == ["10-esp.conf", "20-swap.conf", "30-root.conf"]
    assert "Type=esp\nLabel=esp\nFormat=vfat\nSizeMinBytes=536870912\nSizeMaxBytes=536870912\n" in files["10-esp.conf"]
    assert "Type=root\nLabel=root\nFormat=btrfs\nWeight=2000\n" in files["30-root.conf"]
    assert layout.min_size == 10 << 30
    assert layout.serial == "S1"


def test_seed_is_per_host_and_stable() -> None:
    layout = parse_disk(table(LAYOUT))
    assert layout is not None
    a, b = repart.seed_for(layout, "web1"), repart.seed_for(layout, "web2")
    assert a != b
    assert a == repart.seed_for(layout, "web1")
    declared = parse_disk(table(LAYOUT.replace('serial = "S1"', 'seed = "0d9f3f36-4b4e-4b69-8e8a-6c1b2f0e9a11"')))
    assert declared is not None
    assert repart.seed_for(declared, "web1") == "0d9f3f36-4b4e-4b69-8e8a-6c1b2f0e9a11"


def test_fstab_names_partuuids_and_subvolumes() -> None:
    layout = parse_disk(table(LAYOUT))
    assert layout is not None
    planned = [repart.Planned(p.name, p.type, p.label, f"0000000{i}-0000-4000-8000-000000000000", f"/dev/x{i}", 0, 1,
                              0, "create") for i, p in enumerate(layout.partitions)]
    text = mounts.fstab_text(mounts.layout_mounts(layout, planned, "root"))
    lines = text.splitlines()
    assert lines[0] == mounts.HEADER
    assert lines[1] == "PARTUUID=00000002-0000-4000-8000-000000000000\t/\tbtrfs\tsubvol=/root\t0\t0"
    assert "PARTUUID=00000000-0000-4000-8000-000000000000\t/boot/efi\tvfat\tumask=0077\t0\t2" in lines
    assert "PARTUUID=00000002-0000-4000-8000-000000000000\t/var/log\tbtrfs\tsubvol=/var/log\t0\t0" in lines
    assert lines[-1] == "PARTUUID=00000001-0000-4000-8000-000000000000\tnone\tswap\tdefaults\t0\t0"
    assert mounts.subvolumes_to_make(layout, planned, "root") == {"/dev/x2": ["root", "persist", "var/log"]}


@pytest.mark.parametrize(("change", "message", "line"), [
    (('serial = "S1"', 'device = "/dev/sda"'), "must be a /dev/disk/by-id/ name", 2),
    (('min-size = "10G"', 'min-size = "lots"'), "must be a size", 3),
    (('min-size = "10G"', 'min-size = "10G"\nsize = "10G"'), "declare one", 4),
    (('type = "esp"', 'type = "efi"'), "must be a repart.d Type=", 5),
    (('format = "vfat"', 'format = "ntfs"'), "must be one of vfat", 6),
    (('size = "512M"\n', 'size = "512M"\nmin-size = "1M"\n'), "exact size", 7),
    (('mount = "/boot/efi"', 'mount = "/boot/../efi"'), "normalized path", 8),
    (('type = "swap"\nformat = "swap"', 'type = "swap"\nformat = "ext4"'), "formatted as swap", 11),
    (('format = "btrfs"', 'format = "ext4"'), "only a btrfs partition has subvolumes", 18),
    (('mount = "/"', 'mount = "/srv"'), 'no partition is mounted on "/"', 4),
    (('persist = "/persist"', 'persist = "/boot/efi"'), "mounted twice", 13),
    (('weight = 2000', 'colour = "red"'), "unknown key", 17),
    # contradictions: what they declare would mean nothing, or could not boot
    (('format = "vfat"', 'format = "ext4"'), "an ESP is FAT", 6),
    (('weight = 2000', 'weight = 2000\nsize = "20G"'), "size is exact: it would mean nothing", 17),
    (('size = "1G"\n', ('size = "1G"\n[disk.partitions.data]\ntype = "linux-generic"\nformat = "ext4"\n'
      'options = ["noatime"]\n')), "the partition is not mounted", 16),
])
def test_bad_declarations_name_the_line(change: tuple[str, str], message: str, line: int) -> None:
    from freshroot.config.parse import parse_bytes

    text = LAYOUT.replace(*change)
    assert text != LAYOUT
    document = parse_bytes(text.encode(), "t.toml")
    with pytest.raises(ConfigError, match=message) as caught:
        parse_disk(Table(document.data, (), "t.toml", document.positions))
    assert caught.value.location is not None
    assert caught.value.location.file == "t.toml"
    assert caught.value.location.line == line, str(caught.value)


def test_subvolumes_of_an_unmounted_partition_are_mounted() -> None:
    # A btrfs data partition whose top level is not mounted, only its subvolumes: each one is
    # still mounted and in fstab, not only made.
    text = LAYOUT + ('[disk.partitions.data]\ntype = "linux-generic"\nformat = "btrfs"\n'
                     'options = ["compress=zstd"]\nsubvolumes = { "@home" = "/home" }\n')
    layout = parse_disk(table(text))
    assert layout is not None
    planned = [repart.Planned(p.name, p.type, p.label, f"0000000{i}-0000-4000-8000-000000000000", f"/dev/x{i}", 0, 1,
                              0, "create") for i, p in enumerate(layout.partitions)]
    fstab = mounts.fstab_text(mounts.layout_mounts(layout, planned, "root"))
    assert "PARTUUID=00000003-0000-4000-8000-000000000000\t/home\tbtrfs\tsubvol=/@home,compress=zstd\t0\t0" in fstab
    assert mounts.subvolumes_to_make(layout, planned, "root")["/dev/x3"] == ["@home"]


@pytest.mark.parametrize(("root", "disk_root", "refused"), [
    ('wipe = "btrfs"', 'format = "btrfs"', False),
    ('wipe = "btrfs"', 'format = "ext4"', True),
    ('wipe = "overlay"', 'format = "ext4"', False),
])
def test_config_check_refuses_a_btrfs_wipe_on_another_root(root: str, disk_root: str, refused: bool) -> None:
    from freshroot.disk.model import check

    text = LAYOUT.replace('format = "btrfs"\nmount = "/"\nweight = 2000\nsubvolumes = { persist = "/persist", '
                          '"var/log" = "/var/log" }', f'{disk_root}\nmount = "/"') + f"[root]\n{root}\n"
    assert 'mount = "/"\n[root]' in text
    if not refused:
        assert check(table(text)) is not None
        return
    with pytest.raises(ConfigError, match='needs the partition mounted on "/" to be format = "btrfs"'):
        check(table(text))
