"""The README's example, copied verbatim into /etc/freshroot by `freshroot install` on a root
where nobody created its users (issue 19): boots 1-3 give its users with stable ids, its
mounts and data, /etc/app.conf, the snippet's output in the journal, /run/app from its
tmpfiles rule, the same machine id and SSH host key, undeclared files gone, no failed unit.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.vm.machine import Disk, make_disk

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root, pytest.mark.xdist_group("vm")]

REPO = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    """The first ```toml block of README.md, as it is."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"```toml\n(.*?)```", text, re.DOTALL)
    assert match is not None
    return match.group(1)


SETUP = f"""
chroot "$ROOT" python3 -m compileall -q /usr/lib/python3/dist-packages/freshroot
sed -i 's/x-systemd.device-timeout=30s/x-systemd.device-timeout=300s/' "$ROOT/etc/fstab"
export PYTHONPATH={REPO / "src"}
{sys.executable} -m freshroot install --root "$ROOT" --config {{decl}}
{sys.executable} -m freshroot install --extra-files {{extra}} --root "$ROOT" --config {{decl}}
"""

INSPECT = """
set -u
s() { stat -L -c '%a %U %u %g' "$1" 2>&1; }
{
  echo "alice $(id -u alice 2>&1)"
  echo "app $(id -u app 2>&1)"
  echo "lib $(s /var/lib/app) $(cat /var/lib/app/db 2>&1)"
  echo "conf $(cat /etc/app.conf 2>&1)"
  echo "ssh $(s /home/alice/.ssh) $(cat /home/alice/.ssh/known_hosts 2>&1)"
  echo "run $(s /run/app)"
  echo "undeclared $(cat /var/lib/undeclared 2>&1 | head -c 80)"
  echo "machineid $(cat /etc/machine-id)"
} > state
cat /etc/ssh/ssh_host_ed25519_key.pub > hostkey 2>&1 || true
journalctl -b -o cat -t freshroot > freshroot.log 2>&1 || true
"""

WRITE = """
echo rows > /var/lib/app/db && chown app: /var/lib/app/db
echo "listen = 8080" > /etc/app.conf
echo "github.com ssh-ed25519 AAAA" > /home/alice/.ssh/known_hosts
echo lost > /var/lib/undeclared
"""


def test_readme_example(make_guest, tmp_path):
    decl = tmp_path / "freshroot.toml"
    decl.write_text(readme_example())
    extra = tmp_path / "extra"
    # no_timer_check: under TCG on a busy host the kernel may find the IO-APIC timer too slow and panic
    guest = make_guest(script=SETUP.format(decl=decl, extra=extra), cmdline="no_timer_check")
    persist = make_disk(tmp_path / "persist.img", label="persist", tree=extra / "persist")
    disks = [Disk(persist, "persist")]
    seen: dict[str, str] = {}
    for n in (1, 2, 3):
        boot = guest.boot((WRITE if n == 1 else "") + INSPECT, disks=disks)
        info = boot.describe() + boot.text("freshroot.log")
        assert boot.script_rc == 0, info
        assert boot.failed_units == [], info
        assert boot.system_state == "running", info
        state = boot.state()
        alice, app = state["alice"], state["app"]
        assert alice.isdigit(), (n, state)
        assert app.isdigit(), (n, state)
        assert state["lib"] == f"750 app {app} {app} rows", (n, state)
        assert state["conf"] == "listen = 8080", (n, state)
        assert state["ssh"].startswith(f"755 alice {alice} {alice} github.com"), (n, state)
        assert state["run"] == f"750 app {app} {app}", (n, state)
        if n > 1:
            assert "No such file" in state["undeclared"], (n, state)
        assert "hello from activate" in boot.text("freshroot.log"), boot.text("freshroot.log")
        now = {"ids": f"{alice} {app}", "machineid": state["machineid"], "hostkey": boot.text("hostkey")}
        assert now["hostkey"].startswith("ssh-ed25519 "), now
        assert seen in ({}, now), (n, seen, now)  # the same ids, machine id and host key every boot
        seen = now
        print(f"README example, boot {n}: {boot.seconds:.0f} s wall ({guest.accel})")
