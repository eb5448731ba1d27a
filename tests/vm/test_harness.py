"""The VM harness's own pieces, without booting anything (fast, not marked vm)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.vm.image import BaseImage, debian_mirror, recipe_key
from tests.vm.install import SITE, entry_points, freshroot_overlay
from tests.vm.machine import BootError, Disk, Machine


def test_mirror_from_one_line_and_deb822_sources(tmp_path):
    one_line = tmp_path / "sources.list"
    one_line.write_text("# a comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n")
    assert debian_mirror((one_line,)) == "http://mirror.example/debian"
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "other.sources").write_text(
        "Types: deb\nURIs: https://packages.example/apt\nSuites: stable\n\n"
        "Types: deb\nURIs: http://deb.example.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert debian_mirror((tmp_path / "missing", d)) == "http://deb.example.org/debian"
    assert debian_mirror((tmp_path / "missing",)) == "http://deb.debian.org/debian"


def test_recipe_key_is_stable():
    assert recipe_key() == recipe_key()
    assert len(recipe_key()) == 16


def test_overlay_installs_package_and_entry_points(tmp_path):
    overlay = freshroot_overlay(tmp_path / "overlay")
    assert (overlay / SITE / "freshroot" / "cli.py").is_file()
    assert not list((overlay / SITE).rglob("__pycache__"))
    names = entry_points()
    assert "freshroot" in names
    for name in names:
        script = overlay / "usr" / "bin" / name
        assert script.stat().st_mode & 0o111
    # The script runs with the overlay's package and nothing else on the path.
    code = (
        f"import sys; sys.path.insert(0, {str(overlay / SITE)!r}); sys.argv = ['freshroot', '--version'];"
        f"exec(open({str(overlay / 'usr/bin/freshroot')!r}).read())"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("freshroot ")


def _machine(tmp_path: Path) -> Machine:
    base = BaseImage(tmp_path / "base")
    return Machine(base, tmp_path / "root.raw", tmp_path, accel="tcg")


def test_qemu_argv_root_first_with_snapshot_and_kept_disks(tmp_path):
    machine = _machine(tmp_path)
    argv = machine.qemu_argv([Disk(tmp_path / "persist.img", "persist")], tmp_path / "console.log")
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives[0].startswith(f"if=none,id=disk0,file={tmp_path / 'root.raw'},")
    assert drives[0].endswith(",snapshot=on")
    assert "snapshot" not in drives[1]
    append = argv[argv.index("-append") + 1]
    assert "root=/dev/vda" in append
    assert "freshroot.test" in append
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert "-no-reboot" in argv
    assert argv[argv.index("-nic") + 1] == "none"  # no network unless a test asks for one
    machine.nic = "user,hostfwd=tcp:127.0.0.1:2222-:22"
    argv = machine.qemu_argv([], tmp_path / "console.log")
    assert argv[argv.index("-nic") + 1] == "user,hostfwd=tcp:127.0.0.1:2222-:22"


def test_wait_gives_up_at_the_timeout_and_kvm_failures_stop_at_once(tmp_path):
    machine = _machine(tmp_path)
    stderr = tmp_path / "stderr"
    stderr.write_text("")
    proc = subprocess.Popen(["sleep", "60"])
    try:
        with pytest.raises(BootError, match="did not power off within 1 s"):
            machine._wait(proc, stderr, tmp_path / "console.log", timeout=1)
        stderr.write_text("KVM internal error. Suberror: 1\n")
        with pytest.raises(BootError, match="FRESHROOT_VM_ACCEL=tcg"):
            machine._wait(proc, stderr, tmp_path / "console.log", timeout=60)
    finally:
        proc.kill()
        proc.wait()
