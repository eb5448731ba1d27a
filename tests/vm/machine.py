"""Boot a guest under qemu, run a script in it, and collect what it wrote.

A boot: the root disk (a derived image, see image.py) attached with snapshot=on, so every
boot starts from the same clean image, as a wiped root does; any further disks as given
(the persist disk is attached without snapshot, so it keeps what a boot wrote); and a
*control disk*, a small ext4 image with the boot script on it. The guest's driver unit
(guest/freshroot-test.service) waits for the boot to finish, runs the script, writes
results onto the control disk and powers off. The host then reads the results with
debugfs: no mounts, no network, no serial-console parsing.

The kernel boots directly (-kernel/-initrd/-append). KVM is used when it works here (a
short probe boot, its verdict cached), TCG otherwise; FRESHROOT_VM_ACCEL=kvm|tcg overrides.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.vm.image import BaseImage, cache_dir

QEMU = "qemu-system-x86_64"
CONTROL_SERIAL = "frtest"  # guest/freshroot-test.service waits for /dev/disk/by-id/virtio-frtest
KVM_FAILURES = ("KVM internal error", "failed to set MSR", "kvm_buf_set_msrs")


class BootError(AssertionError):
    """A boot did not get as far as writing results. The message ends with the console tail."""


@dataclass(frozen=True, slots=True)
class Disk:
    """A disk image attached as virtio-blk; in the guest it is /dev/disk/by-id/virtio-SERIAL."""

    path: Path
    serial: str
    snapshot: bool = False  # True: writes go to a temporary overlay, dropped when qemu exits
    format: str = "raw"


@dataclass(frozen=True, slots=True)
class BootResult:
    """What one boot left: the results directory from the control disk, and the console."""

    results: Path
    console: str
    seconds: float

    def text(self, name: str) -> str:
        """A file the driver or the boot script wrote into the results directory."""
        return (self.results / name).read_text(errors="replace")

    def state(self) -> dict[str, str]:
        """The ``key value`` lines the boot script wrote into ``state``, by key ("" for a key
        alone on its line)."""
        return {line.split(" ", 1)[0]: line.split(" ", 1)[1] if " " in line else ""
                for line in self.text("state").splitlines()}

    @property
    def script_rc(self) -> int:
        return int(self.text("script.rc").strip())

    @property
    def script_log(self) -> str:
        return self.text("script.log")

    @property
    def system_state(self) -> str:
        """`systemctl is-system-running --wait` once the boot finished: running, degraded, ..."""
        return self.text("system-state").strip()

    @property
    def failed_units(self) -> list[str]:
        return self.text("failed-units").split()

    @property
    def journal(self) -> str:
        return self.text("journal.txt")

    def describe(self) -> str:
        """A summary for assertion messages: state, failed units, script output."""
        return (
            f"system state: {self.system_state}; failed units: {self.failed_units}; "
            f"script exit {self.script_rc}\n--- script output ---\n{self.script_log}"
        )


def make_disk(path: Path, *, label: str, size_mb: int = 256, tree: Path | None = None) -> Path:
    """A fresh ext4 image at ``path`` labelled ``label``, holding ``tree`` if given."""
    argv = ["mkfs.ext4", "-q", "-F", "-L", label]
    if tree is not None:
        argv += ["-d", str(tree)]
    subprocess.run([*argv, str(path), f"{size_mb}M"], check=True, capture_output=True)
    return path


def read_tree(image: Path, source: str, dest: Path) -> Path:
    """Copy directory ``source`` out of the ext4 ``image`` (not mounted) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["debugfs", "-R", f"rdump {source} {dest}", str(image)], capture_output=True, text=True, check=False
    )
    copied = dest / Path(source).name
    if proc.returncode != 0 or not copied.exists():
        raise FileNotFoundError(f"{image}: cannot read {source}: {proc.stderr.strip()}")
    return copied


def _qemu_version() -> str:
    return subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def _kvm_usable(kernel: Path) -> bool:
    """Whether KVM really runs a guest here: /dev/kvm can be present yet broken (nested
    virtualisation that fails on some instructions or MSRs). The probe boots the kernel with
    no root file system and expects its panic message within a few seconds."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="freshroot-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        argv = [
            QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display", "none",
            "-no-reboot", "-serial", f"file:{console}", "-kernel", str(kernel),
            "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent",
        ]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return False
        text = console.read_text(errors="replace") if console.exists() else ""
        failed = any(s in proc.stderr for s in KVM_FAILURES)
        return not failed and "Kernel panic" in text


def accelerator(kernel: Path) -> str:
    """"kvm" or "tcg", probed once per host, qemu and kernel and cached beside the images."""
    if forced := os.environ.get("FRESHROOT_VM_ACCEL"):
        return forced
    key = hashlib.sha256(f"{platform.release()}\0{_qemu_version()}\0{kernel}".encode()).hexdigest()[:16]
    verdict = cache_dir() / f"accel-{key}"
    with contextlib.suppress(OSError):
        return verdict.read_text().strip()
    accel = "kvm" if _kvm_usable(kernel) else "tcg"
    verdict.parent.mkdir(parents=True, exist_ok=True)
    verdict.write_text(accel + "\n")
    return accel


@dataclass
class Machine:
    """A guest: a root image (booted with snapshot=on) and the base image's kernel and initrd."""

    base: BaseImage
    root: Path
    workdir: Path
    memory_mb: int = 1024
    cpus: int = 1
    cmdline: str = ""  # extra kernel command line
    root_snapshot: bool = True  # False: the root disk keeps what a boot wrote (a wipe of its own)
    nic: str = "none"  # qemu's -nic: "none", or user-mode networking such as "user,hostfwd=tcp:..."
    accel: str = field(default="")
    boots: int = 0

    def __post_init__(self) -> None:
        if not self.accel:
            self.accel = accelerator(self.base.kernel)

    def qemu_argv(self, disks: Sequence[Disk], console: Path) -> list[str]:
        cpu = ["-accel", "kvm", "-cpu", "host"] if self.accel == "kvm" else ["-accel", "tcg", "-cpu", "max"]
        append = f"root=/dev/vda rw console=ttyS0 panic=1 mitigations=off freshroot.test {self.cmdline}".strip()
        argv = [
            QEMU, *cpu, "-m", str(self.memory_mb), "-smp", str(self.cpus),
            "-nodefaults", "-display", "none", "-no-reboot", "-nic", self.nic,
            "-serial", f"file:{console}",
            "-kernel", str(self.base.kernel), "-initrd", str(self.base.initrd), "-append", append,
        ]
        # The root disk first: it is the first virtio disk, /dev/vda.
        for n, disk in enumerate([Disk(self.root, "root", snapshot=self.root_snapshot), *disks]):
            snapshot = ",snapshot=on" if disk.snapshot else ""
            argv += [
                "-drive", f"if=none,id=disk{n},file={disk.path},format={disk.format},cache=unsafe{snapshot}",
                "-device", f"virtio-blk-pci,drive=disk{n},serial={disk.serial}",
            ]
        return argv

    def boot(
        self,
        script: str,
        *,
        disks: Sequence[Disk] = (),
        files: Mapping[str, bytes] | None = None,
        timeout: float = 600,
    ) -> BootResult:
        """Boot once, run ``script`` (bash, as root, cwd the results directory, also in
        $RESULTS) after the boot finished, and return the results. ``files`` are put beside
        the script on the control disk (/run/freshroot-test/NAME in the guest)."""
        self.boots += 1
        run_dir = self.workdir / f"boot-{self.boots}"
        control = run_dir / "control"
        control.mkdir(parents=True)
        (control / "boot.sh").write_text(script)
        for name, data in (files or {}).items():
            (control / name).write_bytes(data)
        control_disk = make_disk(run_dir / "control.img", label="frtest", size_mb=64, tree=control)
        console = run_dir / "console.log"
        stderr_path = run_dir / "qemu.stderr"
        argv = self.qemu_argv([*disks, Disk(control_disk, CONTROL_SERIAL)], console)
        (run_dir / "qemu.argv").write_text("\n".join(argv) + "\n")

        start = time.monotonic()
        with stderr_path.open("w") as stderr:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        try:
            self._wait(proc, stderr_path, console, timeout)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        seconds = time.monotonic() - start
        console_text = console.read_text(errors="replace") if console.exists() else ""
        if proc.returncode != 0:
            raise BootError(f"qemu exited with status {proc.returncode}:\n{stderr_path.read_text()}")
        try:
            results = read_tree(control_disk, "/results", run_dir)
        except FileNotFoundError as e:
            raise BootError(f"the guest wrote no results ({e})\n{_tail(console_text)}") from None
        if not (results / "script.rc").exists():
            raise BootError(f"the boot script did not finish\n{_tail(console_text)}")
        return BootResult(results, console_text, seconds)

    def _wait(self, proc: subprocess.Popen[bytes], stderr: Path, console: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            else:
                return
            errors = stderr.read_text(errors="replace")
            if any(s in errors for s in KVM_FAILURES):
                raise BootError(
                    f"KVM failed to run the guest (set FRESHROOT_VM_ACCEL=tcg):\n{errors[-2000:]}"
                )
            if time.monotonic() > deadline:
                text = console.read_text(errors="replace") if console.exists() else ""
                raise BootError(f"the guest did not power off within {timeout:.0f} s\n{_tail(text)}")


def _tail(console: str, lines: int = 40) -> str:
    return "--- console (last lines) ---\n" + "\n".join(console.splitlines()[-lines:])
