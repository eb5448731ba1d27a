"""freshroot facts: what is read from /sys, /proc and os-release, and the JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.facts import blockdev, machine

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize(("name", "serial"), [
    ("virtio-FR123", "FR123"),
    ("nvme-Samsung_SSD_980_1TB_S64ANS0T123456", "S64ANS0T123456"),
    ("ata-QEMU_HARDDISK_QM00001", "QM00001"),
    ("ata-QEMU_HARDDISK_QM00001-part2", "QM00001"),
    ("scsi-0QEMU_QEMU_HARDDISK_drive-scsi0", "drive-scsi0"),
    ("wwn-0x5002538e40a1b2c3", None),
    ("nvme-eui.002538b1b1b2b3b4", None),
])
def test_serial_from_by_id(name: str, serial: str | None) -> None:
    assert blockdev.serial_from_by_id(name) == serial


def test_os_release_and_memory(tmp_path: Path) -> None:
    (tmp_path / "os-release").write_text('NAME="Debian GNU/Linux"\nID=debian\n# c\nVERSION_ID="12"\nBAD LINE\n'
                                         "PRETTY_NAME='Debian 12 (bookworm)'\n")
    assert machine.os_release(str(tmp_path / "os-release")) == {
        "NAME": "Debian GNU/Linux", "ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian 12 (bookworm)"}
    (tmp_path / "meminfo").write_text("MemTotal:       16318480 kB\nMemFree: 1 kB\nMemAvailable:   8000000 kB\n"
                                      "SwapTotal: 0 kB\n")
    assert machine.memory(str(tmp_path / "meminfo")) == {"total": 16318480 * 1024, "available": 8000000 * 1024,
                                                           "swap": 0}


def test_tools_are_found_on_path(tmp_path: Path) -> None:
    fake = tmp_path / "pacstrap"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    found = machine.tools(str(tmp_path))
    assert found["pacstrap"] == str(fake)
    assert set(found) == set(machine.TOOLS)


def test_json_document() -> None:
    result = subprocess.run([sys.executable, "-m", "freshroot", "facts", "--json"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")}, check=False)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["version"] == machine.VERSION
    assert set(doc) == {"version", "hostname", "kernel", "architecture", "boot_mode", "os", "memory", "rescue",
                        "tools", "disks"}
    assert doc["architecture"] == os.uname().machine
    assert doc["boot_mode"] in ("uefi", "bios")
    assert doc["memory"]["total"] > 0
    assert isinstance(doc["rescue"]["rescue"], bool)
    for disk in doc["disks"]:
        assert disk["path"] == f"/dev/{disk['name']}"
        assert disk["size"] >= 0
        assert set(disk) >= {"by_id", "serial", "model", "partitions", "mounts", "in_use"}
    text = subprocess.run([sys.executable, "-m", "freshroot", "facts"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")}, check=False)
    assert text.returncode == 0
    assert text.stdout.startswith("host:")


@pytest.mark.root
@pytest.mark.xdist_group("loop")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs a loop device")
def test_a_disk_with_its_by_id_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        (tmp_path / "by-id").mkdir()
        (tmp_path / "by-id" / "virtio-FACTS1").symlink_to(device)
        monkeypatch.setenv("FRESHROOT_DEV_BY_ID", str(tmp_path / "by-id"))
        disks = {d.path: d for d in blockdev.read_disks()}
        disk = disks[device]
        assert disk.by_id == (str(tmp_path / "by-id" / "virtio-FACTS1"),)
        assert disk.serial == "FACTS1"
        assert disk.size == 32 << 20
        assert disk.virtual
        assert not disk.in_use()
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)
