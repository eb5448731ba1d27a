"""The initrd script of wipe = "overlay" (initramfs-tools local-bottom) on real mounts.

The "root" is a tmpfs mounted at rootmnt (holding the settings file, an fstab and a file),
in `unshare --mount` so everything goes with the namespace; the script runs under dash with
the environment initramfs-tools gives it (rootmnt, ROOT).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "src/freshroot/root/initramfs-tools/local-bottom"
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("dash", "unshare", "findmnt")),
                       reason="needs dash, unshare and findmnt"),
]

FSTAB = "/dev/vda / ext4 rw,errors=remount-ro 0 1\nLABEL=persist /persist ext4 defaults 0 2\n"


def run_overlay(tmp_path: Path, *, fstab: str = FSTAB, conf: str = "wipe=overlay\nstorage=/persist\n",
                cmdline: str = "quiet") -> dict[str, str]:
    (tmp_path / "fstab").write_text(fstab)
    (tmp_path / "conf").write_text(conf)
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    script = f"""
set -eu
cd "$WORK"
mkdir -p rootmnt
mount -t tmpfs installed rootmnt
mkdir -p rootmnt/etc/freshroot rootmnt/var
cp fstab rootmnt/etc/fstab; cp conf rootmnt/etc/freshroot/root-wipe.conf; echo installed > rootmnt/var/note
rootmnt="$WORK/rootmnt" ROOT=/dev/vda FRESHROOT_RUN="$WORK/run" FRESHROOT_LOG="$WORK/log" FRESHROOT_KMSG=/dev/null \\
  FRESHROOT_CMDLINE="$WORK/cmdline" dash {SCRIPT} 2>stderr
findmnt -n -o FSTYPE rootmnt > fstype
echo written > rootmnt/var/note 2>/dev/null || true
echo new > rootmnt/var/new
cat rootmnt/etc/fstab > fstab.seen
if [ -d run/lower/var ]; then
  cat run/lower/var/note > lower.note; ls run/lower/var > lower.ls
  findmnt -n -o OPTIONS run/lower | tr , '\\n' | grep -x ro > lower.ro || true
  cat run/lower/etc/fstab > lower.fstab
fi
"""
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                          env={"WORK": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()}


def test_the_root_becomes_an_overlay_and_the_installed_root_is_untouched(tmp_path: Path) -> None:
    out = run_overlay(tmp_path)
    assert out["fstype"] == "overlay\n"
    assert out["lower.note"] == "installed\n"  # the write went to the tmpfs upper layer
    assert out["lower.ls"] == "note\n"
    assert out["lower.ro"] == "ro\n"
    assert out["fstab.seen"] == ("# freshroot: the root is an overlay this boot (wipe = \"overlay\"): "
                                 "/dev/vda / ext4 rw,errors=remount-ro 0 1\nLABEL=persist /persist ext4 defaults 0 2\n")
    assert out["lower.fstab"] == FSTAB
    assert "volatile root: an overlay of /dev/vda with a tmpfs upper layer" in out["log"]
    assert "volatile root" in out["stderr"]


def test_storage_on_the_root_keeps_the_root_as_it_is(tmp_path: Path) -> None:
    out = run_overlay(tmp_path, fstab="/dev/vda / ext4 rw 0 1\n")
    assert out["fstype"] == "tmpfs\n"  # not an overlay: the root as mounted
    assert ("the storage /persist is not a file system of its own in /etc/fstab: it lives on the root; the root is "
            "NOT volatile this boot") in out["log"]
    assert "lower.note" not in out


def test_other_wipes_and_no_settings_leave_the_root_alone(tmp_path: Path) -> None:
    for n, conf in enumerate(("wipe=btrfs\n", "wipe=none\n")):
        work = tmp_path / str(n)
        work.mkdir()
        out = run_overlay(work, conf=conf)
        assert out["fstype"] == "tmpfs\n"
        assert "log" not in out


def test_kernel_command_line_skips_it(tmp_path: Path) -> None:
    out = run_overlay(tmp_path, cmdline="freshroot.wipe=0")
    assert out["fstype"] == "tmpfs\n"
    assert "freshroot.wipe=0 on the kernel command line" in out["log"]


TMPFS_ROOT = r"""
set -eu
cd "$WORK"
mkdir -p rootmnt
mount -t ext4 -o loop disk.img rootmnt
mkdir -p rootmnt/etc/freshroot rootmnt/var/lib rootmnt/usr/bin rootmnt/persist
cp fstab rootmnt/etc/fstab; cp conf rootmnt/etc/freshroot/root-wipe.conf; echo installed > rootmnt/var/note
echo tool > rootmnt/usr/bin/tool; ln -s usr/bin rootmnt/bin; echo hidden > rootmnt/.dot
chown 1234:5678 rootmnt/var/lib; chmod 0700 rootmnt/var/lib
rootmnt="$WORK/rootmnt" ROOT="$WORK/disk.img" FRESHROOT_RUN="$WORK/run" FRESHROOT_LOG="$WORK/log" \
  FRESHROOT_KMSG=/dev/null FRESHROOT_CMDLINE="$WORK/cmdline" dash "$SCRIPT" 2>stderr
findmnt -n -o FSTYPE rootmnt > fstype
findmnt -rn -o FSTYPE,OPTIONS rootmnt/usr | cut -d, -f1 > usr.mount || true
echo written > rootmnt/var/note 2>/dev/null || true
echo written > rootmnt/usr/bin/tool 2>/dev/null || echo refused > usr.write
readlink rootmnt/bin > bin.link; cat rootmnt/.dot > dot; stat -c '%u %g %a' rootmnt/var/lib > lib.owner
ls rootmnt > top.ls
cat rootmnt/etc/fstab > fstab.seen
cat run/lower/var/note > lower.note 2>/dev/null || true
"""


def run_tmpfs(tmp_path: Path, fstab: str = FSTAB) -> dict[str, str]:
    """The tmpfs wipe on a real ext4 image (a loop mount, ro-able unlike a tmpfs lower)."""
    (tmp_path / "fstab").write_text(fstab)
    (tmp_path / "conf").write_text("wipe=tmpfs\nstorage=/persist\n")
    (tmp_path / "cmdline").write_text("quiet\n")
    subprocess.run(["truncate", "-s", "64M", str(tmp_path / "disk.img")], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(tmp_path / "disk.img")], check=True)
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", TMPFS_ROOT],
                          env={"WORK": str(tmp_path), "SCRIPT": str(SCRIPT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file() and p.suffix != ".img"}


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs mkfs.ext4")
def test_tmpfs_root_copies_the_top_level_and_binds_usr_read_only(tmp_path: Path) -> None:
    out = run_tmpfs(tmp_path)
    assert out["fstype"] == "tmpfs\n"
    assert out["usr.mount"] == "ext4 ro\n"  # /usr from the disk, read-only
    assert out["usr.write"] == "refused\n"
    assert out["lower.note"] == "installed\n"  # the write went to RAM
    assert out["bin.link"] == "usr/bin\n"  # links copied as links
    assert out["dot"] == "hidden\n"  # dot files too
    assert out["lib.owner"] == "1234 5678 700\n"  # owners and modes kept
    assert out["top.ls"].split() == ["bin", "etc", "lost+found", "persist", "usr", "var"]
    assert out["fstab.seen"].startswith("# freshroot: the root is a tmpfs this boot (wipe = \"tmpfs\"): /dev/vda / ")
    assert "volatile root: a tmpfs with a copy of" in out["log"]


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs mkfs.ext4")
def test_tmpfs_root_with_the_storage_on_the_root_keeps_the_root(tmp_path: Path) -> None:
    out = run_tmpfs(tmp_path, fstab="/dev/vda / ext4 rw 0 1\n")
    assert out["fstype"] == "ext4\n"
    assert "lower.note" not in out or out["lower.note"] == ""
    assert "the root is NOT volatile this boot" in out["log"]
