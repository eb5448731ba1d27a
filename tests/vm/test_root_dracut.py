"""Issue 16 with dracut: a Debian whose initrd is built by dracut (a systemd initrd), with
wipe = "overlay" done by freshroot's dracut module, and an ``early = true`` /var/log bound by
the units freshroot's generator writes in the initrd.

The guest's root comes from the cached image of tests/vm/dracut.py (Debian with dracut
instead of initramfs-tools, shared with test_root_btrfs.py[dracut]). Nothing of freshroot is
in it: a copy gets this tree's freshroot, and `freshroot install --root` (run on the host
against the mounted copy) installs the module 90freshroot-root and rebuilds the initrd with
`dracut --regenerate-all --force` in a chroot; the kernel boots with that initrd. No
snapshot=on: the root disk would keep anything written to it, so a file gone in the next
boot was kept off the disk by the overlay.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.vm.dracut import dracut_image
from tests.vm.image import BaseImage, derive
from tests.vm.install import freshroot_overlay
from tests.vm.machine import Disk, Machine, accelerator, make_disk

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root, pytest.mark.xdist_group("vm")]

REPO = Path(__file__).resolve().parents[2]
UID = 1500

DECLARATION = """\
[root]
wipe = "overlay"

[persist."/persist"]
require-mount = true
directories = [
  { path = "/var/lib/fr-app", user = "fruser", group = "fruser", mode = "0750" },
  { path = "/var/log", early = true },
]
"""

# /persist is mounted in the initrd (x-initrd.mount): the early /var/log is bound from it
# there. 120 s for the persist disk, as in test_root_btrfs.py: udev can be late under TCG.
FSTAB = """\
/dev/vda       /         ext4  rw,errors=remount-ro                                           0 0
LABEL=persist  /persist  ext4  defaults,nofail,x-initrd.mount,x-systemd.device-timeout=120s  0 2
"""

SETUP = f"""
chroot "$ROOT" useradd -m -u {UID} -U -s /bin/bash fruser
export PYTHONPATH={REPO / "src"}
{sys.executable} -m freshroot install --root "$ROOT" --config {{decl}}
{sys.executable} -m freshroot install --extra-files {{extra}} --root "$ROOT" --config {{decl}}
# journald keeps a persistent journal where /var/log/journal exists: the image's, in storage.
cp -a "$ROOT/var/log/journal" {{extra}}/persist/var/log/
cp "$(ls "$ROOT"/boot/initrd.img-* | sort -V | tail -1)" {{boot}}/initrd.img
"""

# The unit freshroot's generator writes in the initrd for the early /var/log, as systemd logs it.
EARLY_LOG = "sysroot-var-log.mount - Persisted /var/log from storage /persist (early, in the initrd)"

# One journalctl per question: each reads the journal files afresh, seconds under TCG. This
# boot's journal is the driver's (BootResult.journal).
INSPECT = """
set -u
{
  echo "app $(stat -c '%a %u %g' /var/lib/fr-app 2>&1) $(cat /var/lib/fr-app/state 2>&1)"
  echo "undeclared $(cat /var/lib/undeclared.txt 2>&1 | head -c 60)"
  echo "rootfs $(findmnt -n -o FSTYPE /)"
  echo "lower $(findmnt -rn -o FSTYPE,OPTIONS /run/freshroot-root/lower | grep -o '^ext4 ro')"
  echo "ondisk $(cat /run/freshroot-root/lower/var/lib/undeclared.txt 2>&1 | head -c 60)"
  echo "log $(findmnt -n -o SOURCE /var/log)"
} > state
journalctl --list-boots --no-pager > boots.txt 2>&1 || true
journalctl -b -1 -o cat --no-pager > previous.txt 2>&1 || true
cat /run/initramfs/freshroot-root.log > wipe.log 2>&1 || true
journalctl -b -t freshroot -o cat > kmsg.log 2>&1 || true
systemctl is-active multi-user.target > active 2>&1 || true
"""

WRITE = """
echo "state-$1" > /var/lib/fr-app/state && chown fruser: /var/lib/fr-app/state
echo lost > /var/lib/undeclared.txt
"""


def _boots(boot) -> int:
    """How many boots `journalctl --list-boots` listed (a header line, then one a boot)."""
    return sum(1 for line in boot.text("boots.txt").splitlines() if line.split()[:1] and
               line.split()[0].lstrip("-").isdigit())


def test_root_dracut(vm_base: BaseImage, tmp_path):
    decl = tmp_path / "freshroot.toml"
    decl.write_text(DECLARATION)
    extra = tmp_path / "extra"
    boot_dir = tmp_path / "boot"
    boot_dir.mkdir()
    image = dracut_image(vm_base)
    (boot_dir / "vmlinuz").symlink_to(image.kernel)
    work = tmp_path / "guest"
    overlay = freshroot_overlay(work / "overlay")
    (overlay / "etc").mkdir(exist_ok=True)
    (overlay / "etc" / "fstab").write_text(FSTAB)
    root = derive(image, work / "root.raw", overlay=overlay,
                  script=SETUP.format(decl=decl, extra=extra, boot=boot_dir))
    guest = Machine(BaseImage(boot_dir), root, work, accel=accelerator(vm_base.kernel), root_snapshot=False)
    persist = make_disk(tmp_path / "persist.img", label="persist", tree=extra / "persist")
    disks = [Disk(persist, "persist")]

    first = guest.boot("set -- 1\n" + WRITE + INSPECT, disks=disks)
    assert first.script_rc == 0, first.describe()
    assert first.failed_units == [], first.describe()
    state = first.state()
    assert state["rootfs"] == "overlay", first.text("state")
    assert state["lower"] == "ext4 ro", first.text("state")
    assert state["ondisk"].startswith("cat:"), first.text("state")  # written to the tmpfs, not the disk
    assert state["log"].endswith("[/var/log]"), first.text("state")  # bound from storage
    wipe = first.text("wipe.log")
    assert "volatile root: an overlay of /dev/vda" in wipe, first.console[-3000:]
    assert wipe.count("freshroot:") == 1, wipe
    assert "volatile root" in first.text("kmsg.log")  # via the kernel log, as "freshroot: ..."
    journal = first.journal
    # freshroot's generator ran in the initrd and its unit bound /var/log below /sysroot there.
    assert f"Mounted {EARLY_LOG}" in journal, journal[-3000:]
    assert "freshroot: volatile root" in journal  # the initrd's own messages reached the journal
    assert _boots(first) == 1, first.text("boots.txt")

    second = guest.boot("set -- 2\n" + INSPECT + WRITE, disks=disks)
    assert second.script_rc == 0, second.describe()
    assert second.failed_units == [], second.describe()
    assert second.text("active").strip() == "active"
    state = second.state()
    assert state["app"] == f"750 {UID} {UID} state-1", second.text("state")  # declared: kept, with its owner
    assert "No such file" in state["undeclared"], second.text("state")  # undeclared: gone
    assert state["rootfs"] == "overlay"
    assert _boots(second) == 2, second.text("boots.txt")  # boot 1's journal is on the persisted /var/log
    previous = second.text("previous.txt")
    assert previous.count("\n") > 100, second.text("boots.txt") + previous[-2000:]
    # ... from its start: the kernel's first lines and what the initrd logged before the
    # switch, /var/log bound there before journald wrote a byte to it.
    assert "Command line:" in previous, previous[:2000]
    assert "volatile root: an overlay of /dev/vda" in previous, previous[-2000:]
    assert f"Mounted {EARLY_LOG}" in previous, previous[-2000:]

    third = guest.boot(INSPECT, disks=disks)
    assert third.script_rc == 0, third.describe()
    assert third.failed_units == [], third.describe()
    state = third.state()
    assert state["app"] == f"750 {UID} {UID} state-2", third.text("state")
    assert "No such file" in state["undeclared"], third.text("state")
    assert _boots(third) == 3, third.text("boots.txt")
    print(f"boots: {first.seconds:.0f} {second.seconds:.0f} {third.seconds:.0f} s ({guest.accel})")
