"""Persistence on a real boot (issue 7's end-to-end scenario).

A Debian guest with freshroot installed and a declaration persisting a directory with an
owner, a bound file, a symlinked file, a directory in a user's home, /var/log, and the SSH
host keys. The root disk is thrown away at every boot; /persist is kept.

Until freshroot's generator exists, the declaration is applied at boot by a stand-in unit
(`freshroot apply`, ordered after /persist is mounted and before local-fs.target, the
journal flush and SSH key generation). The generator replaces the unit, not the test.

- boot 1: the storage is empty; services write state; a late `freshroot apply` moves the
  SSH host key generated at this boot into storage (the preset's migrate = "move");
- boots 2 and 3: the state is there with the declared owners and modes, what boot 1 wrote
  outside the declaration is gone, nothing failed, the SSH host key is the same;
- boot 4, without the persist disk: freshroot says which storage is missing and, being
  `degraded`, lets the boot reach multi-user.target.
"""

from __future__ import annotations

import pytest

from tests.vm.machine import BootResult, Disk, make_disk

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root]

DECLARATION = """\
[persist."/persist"]
include = ["ssh-host-keys"]
require-mount = true
degraded = true
directories = [
    { path = "/var/lib/demo", user = "demo", group = "demo", mode = "0750" },
    { path = "/var/log", early = true, migrate = "move" },
]
files = [
    { path = "/etc/demo.conf", how = "bind", mode = "0640" },
    { path = "/etc/demo-link.conf", how = "symlink" },
]

[persist."/persist".users.alice]
directories = [{ path = "notes", mode = "0700" }]
"""

BOOT_UNIT = """\
# Stand-in for freshroot-generator (issue 7): apply the declaration once /persist is there.
[Unit]
Description=Apply the freshroot declaration
DefaultDependencies=no
Wants=persist.mount
After=persist.mount local-fs-pre.target systemd-remount-fs.service
Before=local-fs.target systemd-journal-flush.service ssh-keygen.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/freshroot apply
"""

# debootstrap left logs in /var/log; a root wiped at every boot starts with none, else the
# root and storage would both hold data there from boot 2 on, which freshroot refuses.
CUSTOMIZE = """
find "$ROOT/var/log" -mindepth 1 -delete
chroot "$ROOT" useradd --system --user-group demo
chroot "$ROOT" useradd --create-home --user-group alice
mkdir -p "$ROOT/etc/systemd/system/local-fs.target.wants"
ln -s ../freshroot-boot.service "$ROOT/etc/systemd/system/local-fs.target.wants/freshroot-boot.service"
"""

# What every boot records: owners and modes, contents, mounts, the host key.
INSPECT = """
set -u
stat -c '%n %U %G %a' /var/lib/demo /persist/var/lib/demo /etc/demo.conf /persist/etc/demo.conf \\
    /home/alice/notes /persist/home/alice/notes > stat 2>&1
readlink /etc/demo-link.conf > link
for f in /var/lib/demo/state /etc/demo.conf /etc/demo-link.conf /home/alice/notes/n.txt /var/log/freshroot-test.log; do
    printf '%s: %s\\n' "$f" "$(cat "$f" 2>/dev/null | tr '\\n' ' ')"
done > contents
for f in /var/tmp/undeclared /etc/undeclared /var/lib/undeclared; do
    if test -e "$f"; then echo "$f"; fi
done > undeclared-present
for p in /var/lib/demo /etc/demo.conf /home/alice/notes /var/log; do
    findmnt -n -o TARGET --mountpoint "$p"
done > mounts 2>&1
ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub > host-key 2>&1
systemctl is-active multi-user.target > multi-user
journalctl -b -u freshroot-boot.service --no-pager -o cat > freshroot-boot.log
"""

WRITE_STATE = """
set -eu
runuser -u demo -- sh -c 'echo "demo state" > /var/lib/demo/state'
echo "bound conf" > /etc/demo.conf
echo "linked conf" > /etc/demo-link.conf
runuser -u alice -- sh -c 'echo "a note" > /home/alice/notes/n.txt'
echo "boot 1" >> /var/log/freshroot-test.log
echo gone > /var/tmp/undeclared
echo gone > /etc/undeclared
echo gone > /var/lib/undeclared
# sshd's key generation ran at this boot: the next apply moves the keys into storage.
freshroot apply > late-apply.log 2>&1
"""


def records(result: BootResult) -> dict[str, str]:
    return {name: result.text(name) for name in ("stat", "link", "contents", "undeclared-present", "host-key")}


def test_declared_state_survives_wiped_boots(make_guest, tmp_path):
    guest = make_guest(
        files={"/etc/freshroot/freshroot.toml": DECLARATION, "/etc/systemd/system/freshroot-boot.service": BOOT_UNIT},
        script=CUSTOMIZE,
    )
    persist = make_disk(tmp_path / "persist.img", label="persist", size_mb=256)
    disks = [Disk(persist, "persist")]

    first = guest.boot(INSPECT + WRITE_STATE, disks=disks)
    assert first.script_rc == 0, first.describe() + first.text("late-apply.log")
    assert first.failed_units == [], first.describe()

    later = []
    for n in (2, 3):
        boot = guest.boot(INSPECT + f'echo "boot {n}" >> /var/log/freshroot-test.log\n', disks=disks)
        assert boot.failed_units == [], boot.describe() + boot.text("freshroot-boot.log")
        assert boot.system_state == "running", boot.describe()
        later.append(boot)
    second, third = later

    stat = second.text("stat").splitlines()
    assert stat == [
        "/var/lib/demo demo demo 750",
        "/persist/var/lib/demo demo demo 750",
        "/etc/demo.conf root root 640",
        "/persist/etc/demo.conf root root 640",
        "/home/alice/notes alice alice 700",
        "/persist/home/alice/notes alice alice 700",
    ], second.describe()
    assert second.text("link").strip() == "/persist/etc/demo-link.conf"
    assert second.text("contents").splitlines() == [
        "/var/lib/demo/state: demo state ",
        "/etc/demo.conf: bound conf ",
        "/etc/demo-link.conf: linked conf ",
        "/home/alice/notes/n.txt: a note ",
        "/var/log/freshroot-test.log: boot 1 ",
    ]
    assert third.text("contents").splitlines()[-1] == "/var/log/freshroot-test.log: boot 1 boot 2 "
    mounts = ["/var/lib/demo", "/etc/demo.conf", "/home/alice/notes", "/var/log"]
    assert second.text("mounts").split() == mounts, second.text("freshroot-boot.log")
    for boot in (second, third):
        assert boot.text("undeclared-present") == ""  # the wiped root forgot them
    assert records(third)["stat"] == records(second)["stat"]
    # The key generated at boot 1 is the one of every later boot.
    assert first.text("host-key").strip()
    assert second.text("host-key") == first.text("host-key") == third.text("host-key")

    # Boot 4 without the persist disk: freshroot names the missing storage, and the boot goes
    # on (degraded = true) to multi-user.target.
    missing = guest.boot(INSPECT, disks=[])
    assert missing.text("multi-user").strip() == "active", missing.describe()
    log = missing.text("freshroot-boot.log")
    assert "storage /persist is not mounted" in log, log
    assert "degraded = true" in log, log
    assert missing.text("undeclared-present") == ""
