"""Issue 17's install over SSH, end to end: `freshroot deploy install` on a rescue VM with a
blank disk, then the installed disk booted alone and reached with strict host-key checking.

The rescue system is the base image (snapshot=on) with sshd, a key the controller logs in
with, a host key the controller knows, and user-mode networking (a host port forwarded to
its port 22); it has Python but no freshroot: `deploy` uploads its own freshroot.pyz
(fleet.toml `pyz`). The blank disk is a sparse raw file attached as virtio-blk with serial
`target`, so the rescue system sees /dev/disk/by-id/virtio-target. The declaration has
`[disk]` (root and persist partitions on that disk, by-id and serial), `[os]` with the
`image` engine and a tar archive of the base image's own root (made when the rescue image is
built; no network in the guest, and debootstrap under TCG would take most of the budget), and
`[persist]` with the ssh-host-keys and machine-id presets and one directory. `deploy install`
runs `disk apply` (systemd-repart, mounts under /mnt, fstab), `bootstrap` and `install
--copy-self --machine-id --host-keys` there.

`bootloader = "none"`: the "reboot" is qemu powering the rescue VM off and booting the
installed disk alone with the base image's kernel and initrd directly (-kernel/-initrd),
`root=PARTUUID=` of the root partition read from the disk's GPT on the host. That boot
must answer SSH with the pinned key (StrictHostKeyChecking=yes, a known_hosts with only that
key; the rescue system's key is refused there), have the pinned machine id, the persisted
paths bound from the persist partition, and no failed unit.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.vm.install import REPO
from tests.vm.machine import BootResult, Disk, Machine

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root, pytest.mark.xdist_group("vm")]

SERIAL = "target"
NETWORK = """\
[Match]
Type=ether

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
"""
# The rescue image, on the host: its keys' modes, networkd for the NIC (no DHCP wait), no
# freshroot of its own (deploy uploads one), and the OS archive the new disk gets: this very
# root without the rescue system's and the pinned host keys and without freshroot (install
# --copy-self brings it).
RESCUE_SETUP = """
chmod 700 "$ROOT/root/.ssh" "$ROOT/root/pinned-keys"
chmod 600 "$ROOT/root/.ssh/authorized_keys" "$ROOT/etc/ssh/ssh_host_ed25519_key" \
    "$ROOT/root/pinned-keys/ssh_host_ed25519_key"
ln -sf /lib/systemd/system/systemd-networkd.service "$ROOT/etc/systemd/system/multi-user.target.wants/"
mkdir -p "$ROOT/etc/systemd/system/sockets.target.wants"
ln -sf /lib/systemd/system/systemd-networkd.socket "$ROOT/etc/systemd/system/sockets.target.wants/"
rm -rf "$ROOT/usr/lib/python3/dist-packages/freshroot" "$ROOT"/usr/bin/freshroot*
tar --create --file="$ROOT/root/os.tar" --directory="$ROOT" --numeric-owner --xattrs --acls \
    --exclude=./root/os.tar --exclude=./root/pinned-keys --exclude='./etc/ssh/ssh_host_*' --exclude=./lost+found .
"""
# In the guest, once booted: wait until the host says it is done (over SSH), then report.
WAIT = """
for i in $(seq 1 900); do test -e /run/host-done && break; sleep 1; done
test -e /run/host-done || { echo "the host never said it was done"; exit 1; }
"""
INSTALLED_CHECKS = """
set -u
cat /etc/machine-id > machine-id
findmnt -n -o SOURCE,FSTYPE / > root-mount
findmnt -n -o SOURCE,FSTYPE /persist > persist-mount
findmnt -n -o SOURCE /var/lib/app > app-mount
findmnt -n -o SOURCE /etc/ssh/ssh_host_ed25519_key > hostkey-mount
stat -c '%a %U' /var/lib/app > app-mode
ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub > host-key
freshroot --version > freshroot-version
"""


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ssh(port: int, key: Path, known_hosts: Path, command: str, *, timeout: float = 120,
         strict: str = "yes") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-p", str(port), "-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", f"StrictHostKeyChecking={strict}", "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "root@127.0.0.1", command],
        capture_output=True, text=True, timeout=timeout, check=False)


def _wait_for_ssh(port: int, key: Path, known_hosts: Path, boot: concurrent.futures.Future[BootResult],
                  deadline: float) -> None:
    last = ""
    while time.monotonic() < deadline:
        if boot.done():
            boot.result()  # raises the boot's error (console tail)
            raise AssertionError("the guest powered off before SSH answered")
        try:
            result = _ssh(port, key, known_hosts, "true", timeout=60)
        except subprocess.TimeoutExpired:
            continue
        if result.returncode == 0:
            return
        last = result.stderr
        time.sleep(3)
    raise AssertionError(f"SSH on port {port} did not answer in time: {last}")


def gpt_partitions(disk: Path) -> dict[str, str]:
    """GPT partition name -> PARTUUID, read from the disk image's primary table."""
    with disk.open("rb") as f:
        f.seek(512)
        header = f.read(92)
        assert header[:8] == b"EFI PART", "no GPT on the disk"
        entries_lba, count, size = struct.unpack_from("<QII", header, 72)
        f.seek(entries_lba * 512)
        table = f.read(count * size)
    found: dict[str, str] = {}
    for i in range(count):
        entry = table[i * size:(i + 1) * size]
        if entry[:16] == bytes(16):
            continue
        name = entry[56:128].decode("utf-16-le").rstrip("\0")
        found[name] = str(uuid.UUID(bytes_le=entry[16:32]))
    return found


def test_deploy_install_on_a_rescue_vm(make_guest, vm_base, tmp_path):
    started = time.monotonic()
    keys = tmp_path / "keys"
    keys.mkdir()
    client_pub = _keygen(keys / "id_ed25519", "controller")
    rescue_pub = _keygen(keys / "rescue_host", "rescue")
    pinned_pub = _keygen(keys / "pinned_host", "pinned")
    machine_id = uuid.uuid4().hex
    port = _free_port()
    nic = f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:22"
    rescue_known = tmp_path / "rescue_known_hosts"
    rescue_known.write_text(f"[127.0.0.1]:{port} {rescue_pub}")
    pinned_known = tmp_path / "pinned_known_hosts"
    pinned_known.write_text(f"[127.0.0.1]:{port} {pinned_pub}")

    rescue = make_guest(files={
        "/root/.ssh/authorized_keys": client_pub,
        "/etc/ssh/ssh_host_ed25519_key": (keys / "rescue_host").read_bytes(),
        "/etc/ssh/ssh_host_ed25519_key.pub": rescue_pub,
        "/root/pinned-keys/ssh_host_ed25519_key": (keys / "pinned_host").read_bytes(),
        "/root/pinned-keys/ssh_host_ed25519_key.pub": pinned_pub,
        "/etc/systemd/network/20-qemu.network": NETWORK,
    }, script=RESCUE_SETUP)
    rescue.nic = nic
    target = tmp_path / "target.raw"
    with target.open("wb") as f:
        f.truncate(2 * 1024**3)  # sparse: blank, as a new disk
    prepared = time.monotonic()

    declaration = tmp_path / "machine.toml"
    declaration.write_text(f"""\
[disk]
device = "/dev/disk/by-id/virtio-{SERIAL}"
serial = "{SERIAL}"

[disk.partitions.root]
type = "root"
format = "ext4"
mount = "/"
min-size = "1G"

[disk.partitions.persist]
type = "linux-generic"
format = "ext4"
mount = "/persist"
size = "256M"

[os]
engine = "image"
image = "/root/os.tar"
bootloader = "none"

[persist."/persist"]
include = ["ssh-host-keys", "machine-id"]
directories = [{{ path = "/var/lib/app", mode = "0750" }}]
""")
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(f"""\
[fleet]
key = "{keys / 'id_ed25519'}"
known_hosts = "{rescue_known}"
connect_timeout = 60

[hosts.newbox]
address = "127.0.0.1"
port = {port}
parts = ["{declaration}"]
pyz = "/root/freshroot.pyz"

[hosts.newbox.install]
root = "/mnt"
machine_id = "{machine_id}"
host_keys = "/root/pinned-keys"
copy_self = true
""")

    # The controller: this tree's freshroot with pyinfra (the venv running the tests).
    controller_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO / "src"),
                      "HOME": str(tmp_path)}
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        boot = pool.submit(rescue.boot, WAIT,
                           disks=[Disk(target, SERIAL)], timeout=1500)
        try:
            _wait_for_ssh(port, keys / "id_ed25519", rescue_known, boot, time.monotonic() + 600)
            rescue_up = time.monotonic()
            deploy = subprocess.run(
                [sys.executable, "-m", "freshroot", "deploy", "install", "--fleet", str(fleet), "--json"],
                env=controller_env, capture_output=True, text=True, timeout=1200, check=False, cwd=tmp_path)
            deployed = time.monotonic()
            report = json.loads(deploy.stdout) if deploy.stdout.strip().startswith("{") else {}
            assert deploy.returncode == 0, f"{deploy.stdout}\n{deploy.stderr}"
            host = report["hosts"]["newbox"]
            assert host["status"] == "changed", host
            assert host["ok"], host
            assert host["reachable"], host
            # Nothing left to do: a second run changes nothing (the pyz and the install are there).
            again = subprocess.run(deploy.args, env=controller_env, capture_output=True, text=True, timeout=600,
                                   check=False, cwd=tmp_path)
            assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
            assert json.loads(again.stdout)["hosts"]["newbox"]["status"] == "no change", again.stdout
            redeployed = time.monotonic()
            # What the install left under /mnt, then unmounted for the power-off.
            seen = _ssh(port, keys / "id_ed25519", rescue_known,
                        "findmnt -R -n -o TARGET,SOURCE,FSTYPE /mnt; cat /mnt/etc/fstab; "
                        "chroot /mnt python3 -I -c 'import freshroot; print(freshroot.__file__)'; "
                        "cat /mnt/persist/etc/machine-id; ls /mnt/persist/etc/ssh")
            assert seen.returncode == 0, seen.stderr
            assert machine_id in seen.stdout
            assert "/freshroot/__init__.py" in seen.stdout  # --copy-self, out of the pyz, where the OS's python3 looks
            assert "ssh_host_ed25519_key" in seen.stdout
            done = _ssh(port, keys / "id_ed25519", rescue_known, "umount -R /mnt && touch /run/host-done")
            assert done.returncode == 0, done.stderr
        finally:
            # Whatever happened, let the guest go (it powers off after the flag or its wait).
            _ssh(port, keys / "id_ed25519", rescue_known, "touch /run/host-done", timeout=60)
        first = boot.result()
    assert first.script_rc == 0, first.describe()
    print(f"\nrescue: {seen.stdout}")

    partitions = gpt_partitions(target)
    assert sorted(partitions) == ["persist", "root"]
    assert "PARTUUID=" + partitions["root"] in seen.stdout  # disk apply's fstab names them by PARTUUID

    installed = Machine(vm_base, target, tmp_path / "installed", cmdline=f"root=PARTUUID={partitions['root']}",
                        root_snapshot=False, nic=nic)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        boot = pool.submit(installed.boot, WAIT + INSTALLED_CHECKS, timeout=1200)
        try:
            _wait_for_ssh(port, keys / "id_ed25519", pinned_known, boot, time.monotonic() + 600)
            # Strict checking against the pinned key alone: the rescue system's key is refused.
            refused = _ssh(port, keys / "id_ed25519", rescue_known, "true")
            assert refused.returncode != 0
            assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr or \
                "Host key verification failed" in refused.stderr, refused.stderr
            strict = _ssh(port, keys / "id_ed25519", pinned_known, "cat /etc/machine-id; touch /run/host-done")
            assert strict.returncode == 0, strict.stderr
            assert strict.stdout.strip() == machine_id
        finally:
            _ssh(port, keys / "id_ed25519", pinned_known, "touch /run/host-done", timeout=60)
        second = boot.result()
    ended = time.monotonic()
    assert second.script_rc == 0, second.describe()
    assert second.failed_units == [], second.describe()
    assert second.system_state == "running", second.describe()
    assert second.text("machine-id").strip() == machine_id
    assert second.text("root-mount").split()[1] == "ext4"
    persist_source, persist_fs = second.text("persist-mount").split()
    assert persist_fs == "ext4"
    # The persisted paths are bind mounts of directories on the persist partition.
    assert second.text("app-mount").strip() == f"{persist_source}[/var/lib/app]"
    assert second.text("hostkey-mount").strip() == f"{persist_source}[/etc/ssh/ssh_host_ed25519_key]"
    assert second.text("app-mode").split() == ["750", "root"]
    pinned_fingerprint = subprocess.run(["ssh-keygen", "-lf", str(keys / "pinned_host.pub")], capture_output=True,
                                        text=True, check=True).stdout.split()[1]
    assert second.text("host-key").split()[1] == pinned_fingerprint
    assert second.text("freshroot-version").strip()  # installed by --copy-self, out of the pyz
    print(f"prepare {prepared - started:.0f} s, rescue boot {rescue_up - prepared:.0f} s, "
          f"deploy install {deployed - rescue_up:.0f} s, again (no change) {redeployed - deployed:.0f} s, "
          f"rescue boot total {first.seconds:.0f} s, "
          f"installed boot {second.seconds:.0f} s, whole test {ended - started:.0f} s ({installed.accel})")
