"""The initrd script (initramfs-tools local-premount) on a real btrfs file system.

Each case makes a sparse btrfs image, lays out the top level as an installed machine has it
(subvolume `root` with the settings file and fstab, the read-only `blank`), and runs the
script under dash (a POSIX sh like the initrd's klibc or busybox sh) with the environment
initramfs-tools gives it (ROOT, ROOTFLAGS), all inside `unshare --mount` so every mount
and its loop device go away with the namespace. The script's file locations are pointed into
the scratch directory.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "src/freshroot/root/initramfs-tools/local-premount"
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("mkfs.btrfs", "btrfs", "dash", "unshare")),
                       reason="needs btrfs-progs, dash and unshare"),
]

CONF = ("wipe=btrfs\nsubvolume=root\nblank=blank\nold-roots=old_roots\nkeep-count={count}\n"
        "keep-seconds={seconds}\nstorage=/persist\n")

LAYOUT = """
btrfs -q subvolume create m/root
mkdir -p m/root/etc/freshroot m/root/var/lib
echo "LABEL=persist /persist ext4 defaults 0 2" > m/root/etc/fstab
cp "$WORK/conf" m/root/etc/freshroot/root-wipe.conf
btrfs -q subvolume snapshot -r m/root m/blank
echo yesterday > m/root/var/lib/undeclared
"""

# What the tests look at afterwards: every subvolume, the old roots and their notes.
REPORT = """
btrfs subvolume list m | sed 's/.* path //' | sort > "$WORK/subvolumes"
ls m/old_roots > "$WORK/old" 2>/dev/null || true
cat m/root/var/lib/undeclared > "$WORK/undeclared" 2>/dev/null || true
"""


@dataclass
class Outcome:
    log: str
    stderr: str
    subvolumes: list[str]
    old: list[str]
    undeclared: str
    param: str


def run_script(tmp_path: Path, *, setup: str = "", runs: int = 1, count: str = "1", seconds: str = "",
               rootflags: str = "-o subvol=root", cmdline: str = "quiet", path_prefix: str = "",
               root: str = '"$dev"') -> Outcome:
    work = tmp_path
    (work / "conf").write_text(CONF.format(count=count, seconds=seconds))
    (work / "cmdline").write_text(cmdline + "\n")
    subprocess.run(["truncate", "-s", "200M", str(work / "img")], check=True)
    subprocess.run(["mkfs.btrfs", "-q", "-f", str(work / "img")], check=True, capture_output=True)
    # initramfs-tools' /scripts: none unless the test writes stubs there (initramfs_tools()).
    run = (f'ROOT={root} ROOTFLAGS="{rootflags}" PATH="{path_prefix}$PATH" FRESHROOT_TOP="$WORK/top" '
           f'FRESHROOT_LOG="$WORK/log" FRESHROOT_KMSG="$WORK/kmsg" FRESHROOT_CMDLINE="$WORK/cmdline" '
           f'FRESHROOT_PARAM="$WORK/param" FRESHROOT_INITRAMFS_SCRIPTS="$WORK/scripts" DEVICE="$dev" '
           f'dash {SCRIPT} 2>>"$WORK/stderr"\n')
    script = ("set -eu\ncd \"$WORK\"\nmkdir -p m top\nmount -o loop img m\ndev=$(findmnt -n -o SOURCE m)\n"
              + LAYOUT + setup + run * runs + REPORT)
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                          env={"WORK": str(work), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr

    def text(name: str) -> str:
        path = work / name
        return path.read_text() if path.exists() else ""

    return Outcome(text("log"), text("stderr"), text("subvolumes").split("\n")[:-1], text("old").split(),
                   text("undeclared"), text("param"))


def test_wipe_keeps_yesterdays_root_and_makes_a_fresh_one(tmp_path):
    out = run_script(tmp_path)
    assert out.undeclared == ""  # the new root is the blank's snapshot
    assert len(out.old) == 1
    assert out.subvolumes == ["blank", f"old_roots/{out.old[0]}", "root"]
    assert (f"fresh root: 'root' is a new snapshot of 'blank'; yesterday's root is old_roots/{out.old[0]}"
            in out.log)
    assert "freshroot: fresh root" in (tmp_path / "kmsg").read_text()  # the kernel log
    assert "freshroot: fresh root" in out.stderr  # the console




def initramfs_tools(tmp_path: Path, *, appears: bool) -> None:
    """Stubs of initramfs-tools' /scripts/functions and /scripts/local: local_device_setup
    records its arguments and, as the real one does once the device is there, sets DEV (here
    to the loop device the test made, $DEVICE), or returns 1 as when it gave up waiting."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "functions").write_text("wait_for_udev() { :; }\n")
    found = 'DEV=$DEVICE' if appears else 'echo "Gave up waiting for $2"; return 1'
    (scripts / "local").write_text(
        'local_device_setup() {\n\twait_for_udev 10\n\techo "$*" >> "$WORK/setup-args"\n'
        f"\t{found}\n}}\n")


def test_initramfs_tools_root_by_uuid_is_waited_for_and_resolved(tmp_path):
    # initramfs-tools runs local-premount before mountroot resolves root=UUID=...: the script
    # resolves it itself with initramfs-tools' local_device_setup (may_panic false).
    initramfs_tools(tmp_path, appears=True)
    out = run_script(tmp_path, root="UUID=0bd2c0a4-5e9a-4c55-9f0e-2a5a8e0e1a11")
    assert (tmp_path / "setup-args").read_text() == \
        "UUID=0bd2c0a4-5e9a-4c55-9f0e-2a5a8e0e1a11 root file system false\n"
    assert len(out.old) == 1, out.log + out.stderr
    assert "fresh root: 'root' is a new snapshot of 'blank'" in out.log
    assert out.undeclared == ""


def test_initramfs_tools_root_that_never_appears_keeps_the_root(tmp_path):
    initramfs_tools(tmp_path, appears=False)
    out = run_script(tmp_path, root="LABEL=gone")
    assert (tmp_path / "setup-args").read_text() == "LABEL=gone root file system false\n"
    _kept(out, "the root device LABEL=gone did not appear")
    assert out.subvolumes == ["blank", "root"]


def test_without_initramfs_tools_the_root_is_used_as_given(tmp_path):
    # dracut's and mkinitcpio's wrappers pass a device path; a word it cannot mount is no wipe.
    out = run_script(tmp_path, root="UUID=0bd2c0a4-5e9a-4c55-9f0e-2a5a8e0e1a11")
    assert not (tmp_path / "setup-args").exists()
    assert "UUID=0bd2c0a4-5e9a-4c55-9f0e-2a5a8e0e1a11 is not a btrfs file system this initrd can mount" in out.log
    assert out.old == []
    assert out.undeclared == "yesterday\n"


def test_keep_count_deletes_older_roots_and_their_nested_subvolumes(tmp_path):
    nested = ("btrfs -q subvolume create m/root/var/lib/docker\n"
              "btrfs -q subvolume create m/root/var/lib/docker/volumes\n"
              "btrfs -q subvolume create m/root/var/lib/docker/volumes/data\n"
              "btrfs -q subvolume create m/root/var/lib/machines\n")
    out = run_script(tmp_path, setup=nested, runs=3, count="1")
    assert len(out.old) == 1, out.log
    assert out.subvolumes == ["blank", f"old_roots/{out.old[0]}", "root"], (out.subvolumes, out.log)
    assert out.log.count("deleted the old root") == 2, out.log


def test_keep_count_two_keeps_two(tmp_path):
    out = run_script(tmp_path, runs=3, count="2")
    assert len(out.old) == 2, out.log


def test_keep_age_deletes_only_roots_older_than_it(tmp_path):
    old = ("mkdir -p m/old_roots && btrfs -q subvolume create m/old_roots/2020-01-01T00:00:00\n"
           "btrfs -q subvolume create m/old_roots/2020-01-01T00:00:00/nested\n"
           "btrfs -q subvolume create m/old_roots/$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%S)\n")
    out = run_script(tmp_path, setup=old, count="", seconds=str(86400))
    assert "2020-01-01T00:00:00" not in out.old, out.log
    assert len(out.old) == 2, out.log  # an hour old, and yesterday's root of this boot
    assert "deleted the old root old_roots/2020-01-01T00:00:00" in out.log


def _kept(out: Outcome, why: str) -> None:
    assert why in out.log, out.log
    assert "the root is NOT wiped this boot, yesterday's root is kept as it was" in out.log
    assert out.undeclared == "yesterday\n"  # the root is untouched
    assert out.old == []


def test_missing_blank_keeps_the_root(tmp_path):
    out = run_script(tmp_path, setup="btrfs -q subvolume delete m/blank\n")
    _kept(out, "the blank snapshot 'blank' is missing")
    assert "blank" not in out.subvolumes


def test_writable_blank_keeps_the_root(tmp_path):
    out = run_script(tmp_path, setup="btrfs property set -ts m/blank ro false\n")
    _kept(out, "'blank' is not a read-only btrfs snapshot")


def test_storage_on_the_root_subvolume_keeps_the_root(tmp_path):
    out = run_script(tmp_path, setup="echo '/dev/vdb /srv ext4 defaults 0 2' > m/root/etc/fstab\n")
    _kept(out, "the storage /persist is not a file system of its own in /etc/fstab")


def test_storage_bound_from_the_root_is_not_its_own_file_system(tmp_path):
    out = run_script(tmp_path, setup="echo '/data /persist none bind 0 0' > m/root/etc/fstab\n")
    _kept(out, "the storage /persist is not a file system of its own")


def test_rootflags_naming_another_subvolume_keeps_the_root(tmp_path):
    out = run_script(tmp_path, setup="btrfs -q subvolume snapshot m/root m/other\n", rootflags="-o subvol=/other")
    _kept(out, "the root is subvolume 'other' but [root] subvolume is 'root'")  # other's settings name root
    assert out.subvolumes == ["blank", "other", "root"]


def test_no_subvol_in_rootflags_keeps_the_root(tmp_path):
    out = run_script(tmp_path, setup="cp -a m/root/etc m/etc\n", rootflags="-o subvolid=256")
    _kept(out, "the kernel command line names no root subvolume (rootflags=subvol=NAME), only subvolid=256")


def test_kernel_command_line_skips_the_wipe(tmp_path):
    out = run_script(tmp_path, cmdline="quiet freshroot.wipe=0 splash")
    assert "freshroot.wipe=0 on the kernel command line" in out.log
    assert out.undeclared == "yesterday\n"
    assert out.old == []


def test_root_without_settings_is_left_alone_quietly(tmp_path):
    out = run_script(tmp_path, setup="rm m/root/etc/freshroot/root-wipe.conf\n")
    assert out.log == ""
    assert out.old == []
    assert out.undeclared == "yesterday\n"


def test_failed_snapshot_puts_yesterdays_root_back(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "btrfs").write_text('#!/bin/sh\n[ "$1 $2" = "subvolume snapshot" ] && { echo "no space" >&2; exit 1; }\n'
                                'exec /usr/bin/btrfs "$@"\n')
    (fake / "btrfs").chmod(0o755)
    out = run_script(tmp_path, path_prefix=f"{fake}:")
    _kept(out, "cannot snapshot 'blank' as 'root'")
    assert out.subvolumes == ["blank", "root"]


def test_failed_snapshot_and_move_back_boots_yesterdays_root_where_it_is(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "btrfs").write_text('#!/bin/sh\n[ "$1 $2" = "subvolume snapshot" ] && exit 1\nexec /usr/bin/btrfs "$@"\n')
    (fake / "mv").write_text('#!/bin/sh\ncase "$1" in */old_roots/*) exit 1 ;; esac\nexec /bin/mv "$@"\n')
    for f in ("btrfs", "mv"):
        (fake / f).chmod(0o755)
    out = run_script(tmp_path, path_prefix=f"{fake}:", rootflags="-o noatime,subvol=root")
    assert len(out.old) == 1
    assert out.param == f"ROOTFLAGS='-o subvol=old_roots/{out.old[0]},noatime'\n"
    assert f"booting old_roots/{out.old[0]}" in out.log
