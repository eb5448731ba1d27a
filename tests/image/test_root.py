"""As root: systemd-dissect recognises the image, and a real daemon runs from its contents."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from freshroot.image.build import build_image
from freshroot.image.declaration import load_table
from freshroot.image.model import ImageFormat, parse_portable
from freshroot.run import run
from tests.image.conftest import declaration

pytestmark = pytest.mark.root


def build(tmp_path: Path, config: Path, fmt: ImageFormat = ImageFormat.SQUASHFS) -> str:
    image = parse_portable(load_table([str(config)]))["demo"].with_format(fmt)
    return build_image(image, str(tmp_path / "out"), epoch=0)


@pytest.mark.parametrize("fmt", [ImageFormat.SQUASHFS, ImageFormat.EROFS])
def test_inspect_needs_no_root(tmp_path, fmt):
    """`freshroot image inspect` as user nobody: no loop device, no mount, same answer."""
    image = build(tmp_path, declaration(tmp_path), fmt)
    # A world-readable scratch directory (pytest's tmp_path is private to root) holding the
    # image and a copy of freshroot itself, wherever this checkout lives.
    public = tempfile.mkdtemp(prefix="freshroot-test-")
    try:
        os.chmod(public, 0o755)  # user nobody must read it: that is the test
        shutil.copy(image, os.path.join(public, "demo_1.0.raw"))
        package = os.path.dirname(os.path.dirname(os.path.abspath(build_image.__code__.co_filename)))
        shutil.copytree(package, os.path.join(public, "src", "freshroot"))
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        result = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                      "env", f"PYTHONPATH={public}/src", python, "-m", "freshroot", "image", "inspect", "--json",
                      os.path.join(public, "demo_1.0.raw")], check=False)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(public)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["format"] == str(fmt)
    assert doc["units"] == [{"name": "demo.service", "attachable": True}]
    assert doc["os_release"]["PORTABLE_PREFIXES"] == "demo"
    assert "/usr/bin/true" in {c["path"] for c in doc["contents"]}


@pytest.mark.parametrize("fmt", [ImageFormat.SQUASHFS, ImageFormat.EROFS])
def test_systemd_dissect_sees_a_portable_service(tmp_path, fmt):
    config = declaration(tmp_path, units=("demo.service", "demo-helper.socket"))
    image = build(tmp_path, config, fmt)
    shown = run(["systemd-dissect", "--no-pager", image]).stdout
    assert str(fmt) in shown  # the file system systemd found
    # systemd-dissect 252 marks the use from os-release's PORTABLE_PREFIXES (its JSON output
    # has a bug that always says false there, so the text is what is checked).
    assert "✓ portable service" in shown
    assert "PORTABLE_PREFIXES=demo" in shown
    # 252 has no --list; copying the unit directory out through its own loop-device mount
    # lists the units exactly as systemd sees them in the image.
    units = tmp_path / "units"
    run(["systemd-dissect", "--copy-from", image, "/etc/systemd/system", str(units)])
    assert sorted(os.listdir(units)) == ["demo-helper.socket", "demo.service"]


def test_without_prefixes_dissect_says_not_portable(tmp_path):
    """The check above can fail: an image lacking PORTABLE_PREFIXES is not marked (nixpkgs' images)."""
    tree = tmp_path / "tree"
    (tree / "usr/lib").mkdir(parents=True)
    (tree / "usr/lib/os-release").write_text("ID=debian\nPORTABLE_ID=demo\n")
    image = str(tmp_path / "plain.raw")
    run(["mksquashfs", str(tree), image, "-quiet", "-no-progress", "-noappend", "-all-root"])
    shown = run(["systemd-dissect", "--no-pager", image]).stdout
    assert "✗ portable service" in shown


@pytest.mark.slow
def test_real_daemon_runs_from_its_image(tmp_path):
    """sshd and its whole library closure, extracted into a scratch root, run under chroot."""
    config = declaration(tmp_path, units=("demo.service",), contents=("/usr/sbin/sshd",),
                         extra='compression = "gzip"\n')
    image = build(tmp_path, config)
    root = tmp_path / "root"
    run(["unsquashfs", "-q", "-n", "-d", str(root), image])
    assert not (root / "usr/bin/ldd").exists()  # nothing but the closure came along
    os.mknod(root / "dev/null", 0o20666, os.makedev(1, 3))  # sshd opens /dev/null first
    result = run(["chroot", str(root), "/usr/sbin/sshd", "-V"], check=False)
    assert result.returncode == 0, result.stderr
    assert "OpenSSH" in result.stderr
    # the proof is not vacuous: take one library away and the loader fails
    libs = root / "usr/lib/x86_64-linux-gnu"
    victim = next(p for p in sorted(libs.iterdir()) if p.name.startswith("libcrypto.so"))
    shutil.move(victim, tmp_path / victim.name)
    broken = run(["chroot", str(root), "/usr/sbin/sshd", "-V"], check=False)
    assert broken.returncode != 0
    assert "error while loading shared libraries" in broken.stderr
