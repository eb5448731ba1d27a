"""Issue 16's volatile wipes on a real Debian, made by freshroot's initramfs-tools script:
- ``overlay``: the installed ext4 root is the read-only lower layer of an overlayfs with a
  tmpfs upper;
- ``tmpfs``: the root is a tmpfs holding a copy of the installed root's top level, /usr bound
  read-only from it.

No snapshot=on: the root disk would keep anything written to it, so a file that is gone in
boot 2 was kept off the disk by the wipe. `freshroot install --root` (run on the host
against the mounted image) installs the hook and scripts and rebuilds the initrd in a chroot;
the kernel boots with that initrd.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.vm.image import BaseImage
from tests.vm.machine import Disk, Machine, make_disk

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root, pytest.mark.xdist_group("vm")]

REPO = Path(__file__).resolve().parents[2]
UID = 1500

DECLARATION = """\
[root]
wipe = "{wipe}"

[persist."/persist"]
require-mount = true
directories = [
  {{ path = "/var/lib/fr-app", user = "fruser", group = "fruser", mode = "0750" }},
]
"""
# What the initramfs script says of each wipe, on the console and in its log.
SAYS = {"overlay": "volatile root: an overlay of /dev/vda", "tmpfs": "volatile root: a tmpfs with a copy of /dev/vda"}

# 120 s for the persist disk, as in test_root_btrfs.py: udev can be late under TCG.
FSTAB = """\
/dev/vda       /         ext4  rw,errors=remount-ro                           0 0
LABEL=persist  /persist  ext4  defaults,nofail,x-systemd.device-timeout=120s  0 2
"""

SETUP = f"""
chroot "$ROOT" useradd -m -u {UID} -U -s /bin/bash fruser
export PYTHONPATH={REPO / "src"}
{sys.executable} -m freshroot install --root "$ROOT" --config {{decl}}
{sys.executable} -m freshroot install --extra-files {{extra}} --root "$ROOT" --config {{decl}}
cp "$(ls "$ROOT"/boot/initrd.img-* | sort -V | tail -1)" {{boot}}/initrd.img
"""

INSPECT = """
set -u
{
  echo "app $(stat -c '%a %u %g' /var/lib/fr-app 2>&1) $(cat /var/lib/fr-app/state 2>&1)"
  echo "undeclared $(cat /var/lib/undeclared.txt 2>&1 | head -c 60)"
  echo "rootfs $(findmnt -n -o FSTYPE /)"
  echo "lower $(findmnt -rn -o FSTYPE,OPTIONS /run/freshroot-root/lower | grep -o '^ext4 ro')"
  echo "ondisk $(cat /run/freshroot-root/lower/var/lib/undeclared.txt 2>&1 | head -c 60)"
  echo "usr $(findmnt -rn -o FSTYPE,OPTIONS /usr | grep -o '^ext4 ro')"
  echo "usrwrite $(touch /usr/fr-test 2>&1 | grep -o 'Read-only file system')"
} > state
cat /run/initramfs/freshroot-root.log > wipe.log 2>&1 || true
journalctl -b -t freshroot -o cat > kmsg.log 2>&1 || true
systemctl is-active multi-user.target > active 2>&1 || true
"""

WRITE = """
echo state-1 > /var/lib/fr-app/state && chown fruser: /var/lib/fr-app/state
echo lost > /var/lib/undeclared.txt
"""


@pytest.mark.parametrize("wipe", ["overlay", "tmpfs"])
def test_root_volatile(make_guest, vm_base: BaseImage, tmp_path, wipe: str):
    decl = tmp_path / "freshroot.toml"
    decl.write_text(DECLARATION.format(wipe=wipe))
    extra = tmp_path / "extra"
    boot_dir = tmp_path / "boot"
    boot_dir.mkdir()
    (boot_dir / "vmlinuz").symlink_to(vm_base.kernel)
    made = make_guest(files={"/etc/fstab": FSTAB}, script=SETUP.format(decl=decl, extra=extra, boot=boot_dir))
    guest = Machine(BaseImage(boot_dir), made.root, made.workdir, accel=made.accel, root_snapshot=False)
    persist = make_disk(tmp_path / "persist.img", label="persist", tree=extra / "persist")
    disks = [Disk(persist, "persist")]

    first = guest.boot(WRITE + INSPECT, disks=disks)
    assert first.script_rc == 0, first.describe()
    assert first.failed_units == [], first.describe()  # systemd-remount-fs too: the root line is out of fstab
    state = first.state()
    assert state["rootfs"] == wipe, first.text("state")
    assert state["lower"] == "ext4 ro", first.text("state")
    if wipe == "tmpfs":
        assert state["usr"] == "ext4 ro", first.text("state")  # /usr from the disk, read-only
        assert state["usrwrite"] == "Read-only file system", first.text("state")
    assert state["ondisk"].startswith("cat:"), first.text("state")  # written to RAM, not the disk
    said = first.text("wipe.log")
    assert SAYS[wipe] in said, first.console[-3000:]
    assert said.count("freshroot:") == 1, said  # nothing else to say (the btrfs script is quiet)
    assert "volatile root" in first.text("kmsg.log")

    second = guest.boot(INSPECT, disks=disks)
    assert second.script_rc == 0, second.describe()
    assert second.failed_units == [], second.describe()
    assert second.text("active").strip() == "active"
    state = second.state()
    assert state["app"] == f"750 {UID} {UID} state-1", second.text("state")  # declared: kept, with its owner
    assert "No such file" in state["undeclared"], second.text("state")  # undeclared: gone
    assert state["rootfs"] == wipe
    print(f"{wipe} boots: {first.seconds:.0f} {second.seconds:.0f} s ({guest.accel})")
