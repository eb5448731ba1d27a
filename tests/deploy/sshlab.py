"""A lab of real OpenSSH servers, each in its own network and mount namespace, for fleet tests
and bench/fleet.py. Needs root, unshare, nsenter, ip and sshd.

- The lab: one network + mount namespace (``unshare -n -m``, a ``sleep`` holding it), where
  the controller runs (``Lab.controller_argv``). The host's network is never touched.
- Each host: a network + mount namespace of its own, joined to the lab by a veth pair
  (10.89.N.1 in the lab, 10.89.N.2 in the host); its mount namespace has a tmpfs on /run
  (sshd's privilege-separation directory, and no /run/systemd/system: the confirm timer is
  the detached-process kind there); an sshd on 10.89.N.2:22 with its own host key and
  key-only root login with a generated key; a scratch root (ROOT) with /etc/passwd and
  /persist, which freshroot gets as --root.

Every process is started here and stopped by pid: the holders, each sshd and whatever runs
in a host's namespaces (found by their /proc/PID/ns/net).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PYTHON = sys.executable
FRESHROOT = f"env PYTHONPATH={SRC} {PYTHON} -m freshroot"

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
LogLevel ERROR
"""


def available() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("unshare", "nsenter", "ip", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not os.path.exists("/usr/sbin/sshd"):
        return "needs openssh-server (/usr/sbin/sshd)"
    return None


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _net_ns(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def pids_in_netns(ns_inode: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _net_ns(int(entry)) == ns_inode]


def _kill_all(ns_inode: int, keep: int | None = None, names: tuple[str, ...] = ()) -> int:
    """SIGKILL the processes in a network namespace (only those named ``names``, if given);
    how many were sent the signal."""
    killed = 0
    for pid in pids_in_netns(ns_inode):
        if pid == keep:
            continue
        if names:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm not in names:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


@dataclass
class LabHost:
    name: str
    index: int
    dir: Path
    holder: subprocess.Popen[bytes]
    sshd: subprocess.Popen[bytes] | None = None
    ns: int = 0

    @property
    def address(self) -> str:
        return f"10.89.{self.index}.2"

    @property
    def root(self) -> Path:
        return self.dir / "root"

    def kill_sshd(self) -> None:
        """Stop this host's sshd and every session it runs (the host stops answering). Again
        until none is left: a child the listener forked while the first pass listed /proc (a
        new connection) holds the listening socket until it closes it, and would answer."""
        for _ in range(100):
            if not _kill_all(self.ns, keep=self.holder.pid, names=("sshd",)):
                return
            time.sleep(0.02)

    def link(self, up: bool) -> None:
        """The host's side of its veth pair: down, it is cut off (packets vanish)."""
        _run(["nsenter", "-t", str(self.holder.pid), "-n", "ip", "link", "set", "eth0", "up" if up else "down"])


@dataclass
class Lab:
    base: Path
    holder: subprocess.Popen[bytes] | None = None
    hosts: list[LabHost] = field(default_factory=list)
    client_key: Path = Path()
    known_hosts: Path = Path()

    def start(self, count: int) -> Lab:
        self.base.mkdir(parents=True, exist_ok=True)
        self.holder = subprocess.Popen(["unshare", "-n", "-m", "--propagation", "private", "sleep", "infinity"])
        self._wait_ns(self.holder.pid)
        lab = str(self.holder.pid)
        _run(["nsenter", "-t", lab, "-n", "ip", "link", "set", "lo", "up"])
        self.client_key = self.base / "id_ed25519"
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-test", "-f", str(self.client_key)])
        known: list[str] = []
        for i in range(1, count + 1):
            host = self._host(i)
            known.append(f"{host.address} {(host.dir / 'host_key.pub').read_text().strip()}")
        self.known_hosts = self.base / "known_hosts"
        self.known_hosts.write_text("\n".join(known) + "\n")
        for host in self.hosts:
            self._wait_port(host)
        return self

    def _wait_ns(self, pid: int) -> None:
        """Until ``pid`` is in a network namespace of its own (not ours, not the lab's: a
        host's holder passes through the lab's on its way)."""
        deadline = time.monotonic() + 10
        others = {None, _net_ns(os.getpid())}
        if self.holder is not None and self.holder.pid != pid:
            others.add(_net_ns(self.holder.pid))
        while _net_ns(pid) in others and time.monotonic() < deadline:
            time.sleep(0.005)

    def _host(self, i: int) -> LabHost:
        assert self.holder is not None
        d = self.base / f"h{i}"
        (d / "root/etc").mkdir(parents=True)
        (d / "root/persist").mkdir()
        (d / "root/etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (d / "root/etc/group").write_text("root:x:0:\n")
        holder = subprocess.Popen(["nsenter", "-t", str(self.holder.pid), "-n", "-m", "--",
                                   "unshare", "-n", "-m", "--propagation", "private", "sleep", "infinity"])
        self._wait_ns(holder.pid)
        host = LabHost(f"h{i}", i, d, holder, ns=_net_ns(holder.pid) or 0)
        self.hosts.append(host)
        lab, hp = str(self.holder.pid), str(holder.pid)
        _run(["nsenter", "-t", lab, "-n", "ip", "link", "add", f"vh{i}", "type", "veth", "peer", "name", "eth0",
              "netns", hp])
        _run(["nsenter", "-t", lab, "-n", "ip", "addr", "add", f"10.89.{i}.1/24", "dev", f"vh{i}"])
        _run(["nsenter", "-t", lab, "-n", "ip", "link", "set", f"vh{i}", "up"])
        _run(["nsenter", "-t", hp, "-n", "ip", "addr", "add", f"{host.address}/24", "dev", "eth0"])
        _run(["nsenter", "-t", hp, "-n", "ip", "link", "set", "eth0", "up"])
        _run(["nsenter", "-t", hp, "-n", "ip", "link", "set", "lo", "up"])
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")])
        shutil.copy(f"{self.client_key}.pub", d / "authorized_keys")
        (d / "sshd_config").write_text(SSHD_CONFIG.format(address=host.address, dir=d))
        # /run of the host's own mount namespace: sshd's /run/sshd, and no systemd there.
        host.sshd = subprocess.Popen(["nsenter", "-t", hp, "-n", "-m", "--", "sh", "-c",
                                      ("mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0755 /run/sshd && "
                                       f"exec /usr/sbin/sshd -D -e -f {d}/sshd_config")],
                                     stderr=subprocess.DEVNULL)
        return host

    def _wait_port(self, host: LabHost) -> None:
        assert self.holder is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            probe = subprocess.run(["nsenter", "-t", str(self.holder.pid), "-n", sys.executable, "-c",
                                    f"import socket; socket.create_connection(('{host.address}', 22), 1).close()"],
                                   capture_output=True, check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd of {host.name} did not start")

    def controller_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run in the lab's network namespace (where the hosts are reachable)."""
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), "-n", "--", *argv]

    def fleet_toml(self, parts: list[str], per_host: dict[str, dict[str, str]] | None = None) -> str:
        lines = ["[fleet]", f"parts = {parts!r}".replace("'", '"'), 'user = "root"', f'key = "{self.client_key}"',
                 f'known_hosts = "{self.known_hosts}"', "strict_host_keys = true", f'freshroot = "{FRESHROOT}"',
                 "connect_timeout = 3", ""]
        for host in self.hosts:
            lines += [f"[hosts.{host.name}]", f'address = "{host.address}"', f'root = "{host.root}"',
                      f'tags = ["{"odd" if host.index % 2 else "even"}"]']
            for key, value in (per_host or {}).get(host.name, {}).items():
                lines.append(f"{key} = {value}")
            lines.append("")
        return "\n".join(lines)

    def stop(self) -> None:
        for host in self.hosts:
            if host.ns:
                _kill_all(host.ns, keep=host.holder.pid)
            for proc in (host.sshd, host.holder):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                if proc is not None:
                    proc.wait()
        if self.holder is not None:
            ns = _net_ns(self.holder.pid)
            if ns and ns != _net_ns(os.getpid()):
                _kill_all(ns, keep=self.holder.pid)
            self.holder.kill()
            self.holder.wait()
