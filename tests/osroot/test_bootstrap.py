"""freshroot bootstrap: [os] parsed, the tar image engine for real, the other engines and the
bootloaders by their command lines (fake tools on PATH that record their argv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from freshroot.config.table import Table
from freshroot.disk.mounts import HEADER
from freshroot.errors import ConfigError
from freshroot.osroot.model import parse_os

REPO = Path(__file__).parents[2]
FSTAB = f"{HEADER}\nPARTUUID=11111111-2222-4333-8444-555555555555\t/\tbtrfs\tsubvol=/root\t0\t0\n"
FAKES = ("mmdebstrap", "debootstrap", "dnf", "pacstrap", "bootctl", "chroot")


def table(text: str) -> Table:
    return Table(tomllib.loads(text), (), "t.toml", {})


def freshroot(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    if path is not None:
        env["PATH"] = f"{path}:{env.get('PATH', '')}"
    return subprocess.run([sys.executable, "-m", "freshroot", *args], env=env, capture_output=True, text=True,
                          check=False)


@pytest.mark.parametrize(("text", "message"), [
    ('engine = "nix"', "engine must be one of"),
    ('engine = "debootstrap"', "suite is required"),
    ('engine = "debootstrap"\nsuite = "bookworm"\nrelease = "41"', "means nothing to engine"),
    ('engine = "debootstrap"\nsuite = "book worm"', "is not a name"),
    ('engine = "mmdebstrap"\nsuite = "bookworm"\nmirror = "ftp://x"', r"http\(s\):// or file://"),
    ('engine = "dnf"\nrelease = "41"', "needs the packages"),
    ('engine = "image"\nimage = "root.tar"', "absolute path"),
    ('engine = "pacstrap"\nbootloader = "lilo"', "bootloader must be one of"),
    ('engine = "pacstrap"\nesp = "boot"', "where the ESP is mounted"),
    ('engine = "pacstrap"\nesp = "/efi"', 'bootloader = "none" installs none: it would mean nothing'),
])
def test_bad_os_sections(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_os(table(f"[os]\n{text}\n"))


@pytest.mark.parametrize(("os_keys", "esp_mount", "refused"), [
    ('bootloader = "systemd-boot"', "/boot/efi", False),
    ('bootloader = "systemd-boot"\nesp = "/efi"', "/efi", False),
    ('bootloader = "systemd-boot"', "/efi", True),  # [os] esp defaults to /boot/efi
    ('bootloader = "systemd-boot"\nesp = "/boot"', "/efi", True),
    ('bootloader = "grub"', "/efi", False),  # grub also boots BIOS machines, without an ESP
])
def test_systemd_boot_needs_the_disk_to_mount_an_esp_there(os_keys: str, esp_mount: str, refused: bool) -> None:
    from freshroot.osroot.model import check

    text = (f'[os]\nengine = "pacstrap"\n{os_keys}\n'
            f'[disk.partitions.esp]\ntype = "esp"\nformat = "vfat"\nsize = "512M"\nmount = "{esp_mount}"\n'
            '[disk.partitions.root]\ntype = "root"\nformat = "ext4"\nmount = "/"\n')
    if not refused:
        assert check(table(text)) is not None
        return
    with pytest.raises(ConfigError, match="mounts no partition of type esp there") as caught:
        check(table(text))
    assert caught.value.location is not None
    assert 'type = "esp", format = "vfat", mount =' in str(caught.value)


def test_defaults() -> None:
    os_root = parse_os(table('[os]\nengine = "pacstrap"\n'))
    assert os_root is not None
    assert os_root.packages == ("base", "linux", "linux-firmware")
    assert os_root.bootloader == "none"
    assert parse_os(table("")) is None


def test_tar_image_is_unpacked_and_fstab_kept(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc/os-release").write_text("ID=test\n")
    (src / "etc/fstab").write_text("# the image's own\n")
    (src / "usr/bin").mkdir(parents=True)
    (src / "usr/bin/tool").write_text("#!/bin/sh\n")
    (src / "usr/bin/tool").chmod(0o4755)
    (src / "bin").symlink_to("usr/bin")
    image = tmp_path / "root.tar.gz"
    with tarfile.open(image, "w:gz") as tar:
        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid, info.gid, info.uname, info.gname = 4242, 4343, "", ""
            return info
        tar.add(src, arcname=".", filter=owned)
    root = tmp_path / "mnt"
    (root / "etc").mkdir(parents=True)
    (root / "etc/fstab").write_text(FSTAB)
    config = tmp_path / "freshroot.toml"
    config.write_text(f'[os]\nengine = "image"\nimage = "{image}"\n')
    dry = freshroot("bootstrap", "--config", str(config), "--root", str(root), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"--file={image} --directory={root}" in dry.stdout
    assert not (root / "etc/os-release").exists()
    result = freshroot("bootstrap", "--config", str(config), "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert (root / "etc/os-release").read_text() == "ID=test\n"
    assert (root / "etc/fstab").read_text() == FSTAB, "disk apply's fstab is put back"
    assert os.readlink(root / "bin") == "usr/bin"
    st = (root / "usr/bin/tool").stat()
    assert st.st_mode & 0o7777 == 0o4755
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (4242, 4343)


def _fakes(tmp_path: Path) -> tuple[Path, Path]:
    """A directory of fake tools that append their argv (JSON) to a record; the fake
    debootstrap also leaves a kernel in the root, as a real one with linux-image does."""
    bin_dir, record = tmp_path / "fakebin", tmp_path / "record"
    bin_dir.mkdir()
    for name in FAKES:
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\nimport json, os, sys\n"
            f"with open({str(record)!r}, 'a') as f:\n    f.write(json.dumps([os.path.basename(sys.argv[0]), "
            "*sys.argv[1:]]) + '\\n')\n"
            "if os.path.basename(sys.argv[0]) == 'debootstrap':\n"
            "    os.makedirs(os.path.join(sys.argv[-1], 'boot'), exist_ok=True)\n"
            "    open(os.path.join(sys.argv[-1], 'boot', 'vmlinuz-6.1.0-test'), 'w').close()\n")
        script.chmod(0o755)
    return bin_dir, record


def _calls(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


@pytest.mark.parametrize(("section", "expected"), [
    (('engine = "mmdebstrap"\nsuite = "trixie"\nmirror = "http://deb.debian.org/debian"\npackages = ["a", "b"]\n'
     'architecture = "arm64"'),
     [["mmdebstrap", "--skip=check/empty", "--mode=root", "--include=a,b", "--architectures=arm64", "trixie",
       "ROOT", "http://deb.debian.org/debian"]]),
    ('engine = "dnf"\nrelease = "41"\npackages = ["@core", "kernel"]',
     [["dnf", "--assumeyes", "--installroot=ROOT", "--releasever=41", "--setopt=install_weak_deps=False",
       "install", "@core", "kernel"]]),
    ('engine = "pacstrap"', [["pacstrap", "-K", "ROOT", "base", "linux", "linux-firmware"]]),
])
def test_engine_command_lines(tmp_path: Path, section: str, expected: list[list[str]]) -> None:
    bin_dir, record = _fakes(tmp_path)
    root = tmp_path / "mnt"
    root.mkdir()
    config = tmp_path / "freshroot.toml"
    config.write_text(f"[os]\n{section}\n")
    result = freshroot("bootstrap", "--config", str(config), "--root", str(root), path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert _calls(record) == [[a.replace("ROOT", str(root)) for a in call] for call in expected]
    dry = freshroot("bootstrap", "--config", str(config), "--root", str(root), "--dry-run", path=str(bin_dir))
    assert dry.returncode == 0
    assert len(_calls(record)) == len(expected), "a dry run runs nothing"
    assert str(bin_dir / expected[0][0]) in dry.stdout


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="binds /dev, /proc, /sys into the root (in its own namespace)")
def test_debootstrap_then_systemd_boot(tmp_path: Path) -> None:
    bin_dir, record = _fakes(tmp_path)
    root = tmp_path / "mnt"
    (root / "etc").mkdir(parents=True)
    (root / "etc/fstab").write_text(FSTAB)
    config = tmp_path / "freshroot.toml"
    config.write_text('[os]\nengine = "debootstrap"\nsuite = "bookworm"\npackages = ["linux-image-amd64"]\n'
                      'bootloader = "systemd-boot"\n')
    result = freshroot("bootstrap", "--config", str(config), "--root", str(root), path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    calls = _calls(record)
    assert calls[0] == ["debootstrap", "--include=linux-image-amd64", "bookworm", str(root)]
    assert calls[1][0] == "bootctl"
    assert calls[1][-1] == "install"
    assert f"--root={root}" in calls[1]
    assert f"--esp-path={root}/boot/efi" in calls[1]
    assert ("--no-variables" in calls[1]) == (not os.path.isdir("/sys/firmware/efi"))
    assert calls[2] == ["chroot", str(root), "kernel-install", "add", "6.1.0-test", "/boot/vmlinuz-6.1.0-test"]
    assert (root / "etc/kernel/cmdline").read_text() == \
        "root=PARTUUID=11111111-2222-4333-8444-555555555555 rootflags=subvol=/root rw\n"
    assert not os.path.ismount(root / "proc"), "the binds stayed in bootstrap's own namespace"


def test_grub_on_bios_needs_the_disk(tmp_path: Path) -> None:
    root = tmp_path / "mnt"
    root.mkdir()
    config = tmp_path / "freshroot.toml"
    config.write_text('[os]\nengine = "pacstrap"\nbootloader = "grub"\n')
    bin_dir, _ = _fakes(tmp_path)
    result = freshroot("bootstrap", "--config", str(config), "--root", str(root), "--dry-run", path=str(bin_dir))
    if os.path.isdir("/sys/firmware/efi"):
        assert result.returncode == 0
        assert "grub-install --target=" in result.stdout
    else:
        assert result.returncode == 73
        assert "needs the disk" in result.stderr
        with_disk = freshroot("bootstrap", "--config", str(config), "--root", str(root), "--dry-run",
                              "--device", "/dev/disk/by-id/virtio-X", path=str(bin_dir))
        assert with_disk.returncode == 0, with_disk.stderr
        assert f"chroot {root} grub-install --target=i386-pc" in with_disk.stdout
        assert f"chroot {root} grub-mkconfig -o /boot/grub/grub.cfg" in with_disk.stdout


def test_refuses_the_running_root_and_no_section(tmp_path: Path) -> None:
    config = tmp_path / "freshroot.toml"
    config.write_text('[os]\nengine = "pacstrap"\n')
    result = freshroot("bootstrap", "--config", str(config), "--root", "/")
    assert result.returncode == 65
    assert "not /" in result.stderr
    result = freshroot("bootstrap", "--config", str(config), "--root", str(tmp_path / "absent"), "--dry-run")
    assert result.returncode == 65
    assert "absent: no such directory" in result.stderr
    for image, said in ((tmp_path / "none.tar", "no such file"), (tmp_path, "a directory, not a raw image")):
        config.write_text(f'[os]\nengine = "image"\nimage = "{image}"\n')
        result = freshroot("bootstrap", "--config", str(config), "--root", str(tmp_path), "--dry-run")
        assert result.returncode == 73, result.stderr
        assert f"[os] image {image}: {said}" in result.stderr
        assert result.stdout == ""  # refused before anything is said to be done
    config.write_text("")
    result = freshroot("bootstrap", "--config", str(config), "--root", str(tmp_path))
    assert result.returncode == 65
    assert "no [os] section" in result.stderr
