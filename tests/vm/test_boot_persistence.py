"""Issue 7's end-to-end test: a real Debian boots with a wiped root, and freshroot's generator
and units keep exactly what the declaration says across boots.

The guest image gets freshroot (the harness), a user, and `freshroot install --root` (the
declaration, storage directories, the generator); the persist disk is made from `freshroot
install --extra-files`'s persist/ tree, as nixos-anywhere would lay it down. Boot 1 writes
state; boots 2 and 3 find it, with the declared owners and modes, and nothing else; a boot
without the persist disk says so and, the storage being degraded, reaches multi-user.target.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.vm.machine import Disk, make_disk

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root, pytest.mark.xdist_group("vm")]

REPO = Path(__file__).resolve().parents[2]
UID = 1500

DECLARATION = """\
[persist."/persist"]
require-mount = true
degraded = true
directories = [
  { path = "/var/lib/fr-app", user = "fruser", group = "fruser", mode = "0750" },
  { path = "/var/log", early = true },
  { path = "/home/fruser", user = "fruser", group = "fruser", mode = "0700" },
]
files = [
  { path = "/etc/fr-bound.conf", how = "bind", group = "fruser", mode = "0640" },
  { path = "/etc/fr-linked.conf", how = "symlink" },
  { path = "/etc/ssh/ssh_host_ed25519_key", how = "symlink", mode = "0600" },
  { path = "/etc/ssh/ssh_host_ed25519_key.pub", how = "symlink" },
]

[tmpfiles]
engine = "freshroot"   # the setup unit runs freshroot-tmpfiles at boot
rules = ["d /var/lib/fr-fresh 0711 fruser fruser -"]
"""

SETUP = f"""
chroot "$ROOT" useradd -m -u {UID} -U -s /bin/bash fruser
cp {{decl}} "$ROOT/root/freshroot.toml"
export PYTHONPATH={REPO / "src"}
{sys.executable} -m freshroot install --root "$ROOT" --config "$ROOT/root/freshroot.toml"
{sys.executable} -m freshroot install --extra-files {{extra}} --root "$ROOT" --config "$ROOT/root/freshroot.toml"
"""

INSPECT = """
set -u
s() { stat -L -c '%a %u %g' "$1" 2>&1; }
{
  echo "app $(s /var/lib/fr-app) $(cat /var/lib/fr-app/state 2>&1)"
  echo "store $(s /persist/var/lib/fr-app)"
  echo "home $(s /home/fruser) $(cat /home/fruser/note 2>&1)"
  echo "bound $(s /etc/fr-bound.conf) $(cat /etc/fr-bound.conf 2>&1)"
  echo "linked $(readlink /etc/fr-linked.conf) $(cat /etc/fr-linked.conf 2>&1)"
  echo "fresh $(s /var/lib/fr-fresh)"
  echo "undeclared $(cat /var/lib/undeclared.txt 2>&1 | head -c 60)"
  echo "marker $(cat /var/log/fr-marker 2>&1)"
} > state
for t in /var/lib/fr-app /var/log /home/fruser /etc/fr-bound.conf; do
  findmnt -n -o TARGET,SOURCE -M "$t" || echo "$t not-mounted"
done > mounts 2>&1
cat /etc/ssh/ssh_host_ed25519_key.pub > hostkey 2>&1 || true
systemctl is-active multi-user.target ssh.service > active 2>&1 || true
journalctl -b -o cat -u freshroot-activate.service > freshroot.log 2>&1 || true
"""

WRITE = """
echo state-1 > /var/lib/fr-app/state
echo note-1 > /home/fruser/note && chown fruser: /home/fruser/note
echo bound-1 > /etc/fr-bound.conf
echo linked-1 > /etc/fr-linked.conf
echo boot-1 > /var/log/fr-marker
echo lost > /var/lib/undeclared.txt
"""


def test_boot_persistence(make_guest, tmp_path):
    decl = tmp_path / "freshroot.toml"
    decl.write_text(DECLARATION)
    extra = tmp_path / "extra"
    guest = make_guest(script=SETUP.format(decl=decl, extra=extra))
    assert (extra / "persist" / "var" / "lib" / "fr-app").stat().st_uid == UID
    persist = make_disk(tmp_path / "persist.img", label="persist", tree=extra / "persist")
    disks = [Disk(persist, "persist")]

    first = guest.boot(WRITE + INSPECT, disks=disks)
    assert first.script_rc == 0, first.describe()
    assert first.failed_units == [], first.describe() + first.text("freshroot.log")
    state = first.state()
    assert state["app"] == f"750 {UID} {UID} state-1", first.text("state")
    assert state["linked"] == "/persist/etc/fr-linked.conf linked-1"
    mounts = first.text("mounts")
    for target in ("/var/lib/fr-app", "/var/log", "/home/fruser", "/etc/fr-bound.conf"):
        assert f"{target} /dev/vdb[{target}]" in mounts, mounts
    key = first.text("hostkey")
    assert key.startswith("ssh-ed25519 "), key

    for n in (2, 3):
        boot = guest.boot(INSPECT, disks=disks)
        assert boot.script_rc == 0, boot.describe()
        assert boot.failed_units == [], boot.describe() + boot.text("freshroot.log")
        assert boot.system_state == "running", boot.describe()
        state = boot.state()
        assert state["app"] == f"750 {UID} {UID} state-1", (n, boot.text("state"))
        assert state["store"] == f"750 {UID} {UID}"
        assert state["home"] == f"700 {UID} {UID} note-1"
        assert state["bound"] == f"640 0 {UID} bound-1"
        assert state["linked"] == "/persist/etc/fr-linked.conf linked-1"
        assert state["fresh"] == f"711 {UID} {UID}"  # tmpfiles at boot, from the declaration
        assert state["marker"] == "boot-1"  # the early path, /var/log
        assert "No such file" in state["undeclared"]
        assert boot.text("hostkey") == key
        assert boot.text("active").split() == ["active", "active"]

    missing = guest.boot(INSPECT, disks=[])
    assert missing.script_rc == 0, missing.describe()
    assert missing.text("active").split()[0] == "active", missing.describe()
    log = missing.text("freshroot.log")
    assert "storage /persist is not mounted" in log, log
    assert "degraded = true: its 7 entries are left alone" in log, log
    print(f"boots: {first.seconds:.0f} s, missing disk {missing.seconds:.0f} s ({guest.accel})")
