"""disk plan|apply on a real disk: a sparse file on a loop device, named through a by-id
directory of the test's own (FRESHROOT_DEV_BY_ID; loop devices have no by-id link). Every
run is in a private mount namespace, so the mounts never reach the host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nsutil import in_mount_namespace

REPO = Path(__file__).parents[2]
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices, mounts)"),
    pytest.mark.skipif(shutil.which("systemd-repart") is None, reason="needs systemd-repart"),
    pytest.mark.xdist_group("loop"),
]
SERIAL = "FRTEST17"
# ext4 everywhere but the btrfs root: this kernel may lack vfat, and a test ESP only needs
# to be a file system of its own.
DECLARATION = f"""\
[disk]
serial = "{SERIAL}"
min-size = "500M"
[disk.partitions.boot]
type = "xbootldr"
format = "ext4"
size = "64M"
mount = "/boot"
[disk.partitions.root]
type = "root"
format = "btrfs"
mount = "/"
subvolumes = {{ persist = "/persist" }}
[root]
wipe = "btrfs"
[persist."/persist"]
directories = ["/var/log"]
"""


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(the by-id link, the loop device) of a fresh 600 MiB sparse disk."""
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(600 << 20)
    device = _sh("losetup", "--find", "--show", "--partscan", str(image)).strip()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    link = by_id / f"virtio-{SERIAL}"
    link.symlink_to(device)
    try:
        yield link, device
    finally:
        subprocess.run(["partx", "--delete", device], capture_output=True, check=False)
        subprocess.run(["losetup", "--detach", device], capture_output=True, check=False)


def freshroot(*args: str, by_id: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "FRESHROOT_DEV_BY_ID": str(by_id)}
    return subprocess.run([sys.executable, "-m", "freshroot", *args], env=env, capture_output=True, text=True,
                          check=False)


def _config(tmp_path: Path, text: str = DECLARATION) -> str:
    path = tmp_path / "freshroot.toml"
    path.write_text(text)
    return str(path)


def test_plan_then_apply_then_nothing_to_do(tmp_path: Path, disk: tuple[Path, str]) -> None:
    link, device = disk
    config = _config(tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    common = ("--config", config, "--device", str(link), "--hostname", "web1")

    def body() -> dict[str, Any]:
        plan = freshroot("disk", "plan", *common, "--json", by_id=link.parent)
        first = freshroot("disk", "apply", *common, "--mount-root", str(mnt), "--json", by_id=link.parent)
        mounted = _sh("findmnt", "--raw", "--noheadings", "--output", "TARGET,SOURCE,FSTYPE", "--submounts",
                      "--mountpoint", str(mnt))
        second = freshroot("disk", "apply", *common, "--mount-root", str(mnt), "--json", by_id=link.parent)
        table = _sh("sfdisk", "--json", device) if shutil.which("sfdisk") else _sh("partx", "--show", "--output",
                                                                                     "NR,UUID,NAME", device)
        return {"plan": (plan.returncode, plan.stdout, plan.stderr), "first": (first.returncode, first.stdout,
                first.stderr), "second": (second.returncode, second.stdout, second.stderr), "mounted": mounted,
                "table": table, "fstab": (mnt / "etc/fstab").read_text() if (mnt / "etc/fstab").exists() else None}

    got = in_mount_namespace(body)
    code, out, err = got["plan"]
    assert code == 0, err
    plan = json.loads(out)
    assert plan["version"] == 1
    assert plan["changes"] == 2
    assert plan["serial"] == SERIAL
    assert [p["activity"] for p in plan["partitions"]] == ["create", "create"]
    code, out, err = got["first"]
    assert code == 0, err
    first = json.loads(out)
    uuids = [p["uuid"] for p in first["partitions"]]
    assert uuids == [p["uuid"] for p in plan["partitions"]], "the dry run's UUIDs are the ones made"
    for u in uuids:
        assert u in str(got["table"]).lower() or u.upper() in str(got["table"])
    mounted = str(got["mounted"])
    assert f"{mnt} {device}p2[/root] btrfs" in mounted
    assert f"{mnt}/persist {device}p2[/persist] btrfs" in mounted
    assert f"{mnt}/boot {device}p1 ext4" in mounted
    fstab = str(got["fstab"])
    assert f"PARTUUID={uuids[1]}\t/\tbtrfs\tsubvol=/root\t0\t0" in fstab
    assert f"PARTUUID={uuids[1]}\t/persist\tbtrfs\tsubvol=/persist\t0\t0" in fstab
    assert f"PARTUUID={uuids[0]}\t/boot\text4\tdefaults\t0\t2" in fstab
    code, out, err = got["second"]
    assert code == 0, err
    second = json.loads(out)
    assert second["changes"] == 0
    assert [p["uuid"] for p in second["partitions"]] == uuids
    assert any("already mounted" in line for line in second["done"])


def test_an_esp_is_made_with_mkfs_vfat(tmp_path: Path, disk: tuple[Path, str]) -> None:
    # systemd-repart runs mkfs.vfat (dosfstools, which dev.sh installs) for Format=vfat. Not
    # mounted: this kernel may lack vfat; the file system is read from the partition itself.
    link, device = disk
    text = DECLARATION.replace("[disk.partitions.boot]", '[disk.partitions.esp]\ntype = "esp"\nformat = "vfat"\n'
                               'size = "64M"\n[disk.partitions.boot]')
    assert text != DECLARATION
    config = _config(tmp_path, text)
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    def body() -> tuple[int, str, str, bytes]:
        result = freshroot("disk", "apply", "--config", config, "--device", str(link), "--mount-root", str(mnt),
                           by_id=link.parent)
        kind = _sh("blkid", "--probe", "--output", "value", "--match-tag", "TYPE", f"{device}p1").strip()
        with open(f"{device}p1", "rb") as f:
            boot_sector = f.read(512)
        return result.returncode, result.stderr, kind, boot_sector

    code, err, kind, boot_sector = in_mount_namespace(body)
    assert code == 0, err
    assert kind == "vfat"
    assert boot_sector[3:11] == b"mkfs.fat"  # dosfstools' OEM name
    assert boot_sector[510:512] == b"\x55\xaa"


def test_another_host_gets_other_uuids(tmp_path: Path, disk: tuple[Path, str]) -> None:
    link, _ = disk
    config = _config(tmp_path)
    plans = []
    for host in ("web1", "web2", "web1"):
        result = freshroot("disk", "plan", "--config", config, "--device", str(link), "--hostname", host, "--json",
                           by_id=link.parent)
        assert result.returncode == 0, result.stderr
        plans.append([p["uuid"] for p in json.loads(result.stdout)["partitions"]])
    assert plans[0] == plans[2]
    assert not set(plans[0]) & set(plans[1])


@pytest.mark.parametrize(("change", "code", "message"), [
    ((f'serial = "{SERIAL}"', 'serial = "OTHER"'), 73, "is not the declared serial OTHER"),
    (('min-size = "500M"', 'min-size = "1G"'), 73, "less than the declared min-size"),
    (('min-size = "500M"', 'size = "599M"'), 73, "not the declared size"),
    (('wipe = "btrfs"', 'wipe = "lvm"'), 65, "wipe must be one of"),
    (('subvolumes = { persist = "/persist" }', ""), 65, "storage /persist is no partition or subvolume"),
])
def test_refusals_change_nothing(tmp_path: Path, disk: tuple[Path, str], change: tuple[str, str], code: int,
                                 message: str) -> None:
    link, device = disk
    text = DECLARATION.replace(*change)
    assert text != DECLARATION
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    config = _config(tmp_path, text)
    result = in_mount_namespace(lambda: freshroot("disk", "apply", "--config", config, "--device", str(link),
                                                  "--mount-root", str(mnt), by_id=link.parent))
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    table = subprocess.run(["partx", "--show", device], capture_output=True, text=True, check=False)
    assert table.returncode != 0 or not table.stdout.strip(), "no partition table was written"


def test_refuses_a_kernel_name_and_a_disk_in_use(tmp_path: Path, disk: tuple[Path, str]) -> None:
    link, device = disk
    config = _config(tmp_path)
    result = freshroot("disk", "plan", "--config", config, "--device", device, by_id=link.parent)
    assert result.returncode == 65, result.stderr
    assert "not a name in" in result.stderr

    def body() -> tuple[int, str]:
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        assert freshroot("disk", "apply", "--config", config, "--device", str(link), "--mount-root", str(mnt),
                         by_id=link.parent).returncode == 0
        again = freshroot("disk", "plan", "--config", config, "--device", str(link), by_id=link.parent)
        return again.returncode, again.stderr

    code, err = in_mount_namespace(body)
    assert code == 73, err
    assert "is in use" in err
    assert f"{device}p1 is mounted on" in err
