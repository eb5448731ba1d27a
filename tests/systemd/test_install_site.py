"""install --copy-self puts freshroot where the target's own Python looks (its sysconfig),
not in Debian's path on every distribution."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.pyroot import HOST_PYTHON, copy_host_python
from tests.systemd.helpers import GROUP, PASSWD, RICH, freshroot

pytestmark = pytest.mark.root  # chroot, owners other than our own


def make_target(tmp_path: Path) -> Path:
    root = tmp_path / "mnt"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (tmp_path / "decl.toml").write_text(RICH)
    return root


@pytest.mark.skipif(not os.path.exists(HOST_PYTHON) or shutil.which("chroot") is None or shutil.which("ldd") is None,
                    reason="needs the system's /usr/bin/python3, chroot and ldd")
@pytest.mark.slow
def test_copy_self_asks_the_targets_python(tmp_path: Path) -> None:
    root = make_target(tmp_path)
    copy_host_python(root)
    expected = subprocess.run([HOST_PYTHON, "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              capture_output=True, text=True, check=True).stdout.strip()
    result = freshroot("install", "--root", str(root), "--config", str(tmp_path / "decl.toml"), "--copy-self")
    assert result.returncode == 0, result.stderr
    assert f"freshroot copied into {expected}/freshroot (asked the target's /usr/bin/python3)" in result.stdout
    assert (root / expected.lstrip("/") / "freshroot" / "systemd" / "generator.py").is_file()
    # The installed generator and commands run with the target's own `python3 -I`.
    gen = subprocess.run(["chroot", str(root), "/usr/lib/systemd/system-generators/freshroot-generator",
                          "--version"], capture_output=True, text=True, check=False)
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.startswith("freshroot-generator (freshroot) ")
    version = subprocess.run(["chroot", str(root), "/usr/bin/freshroot", "--version"],
                             capture_output=True, text=True, check=False)
    assert version.stdout.startswith("freshroot "), version.stderr


def test_copy_self_follows_a_site_packages_layout(tmp_path: Path) -> None:
    """No interpreter that runs here (another architecture, or not unpacked yet), but the
    layout of Fedora or Arch: their site-packages, which Debian's path is not."""
    root = make_target(tmp_path)
    site = root / "usr" / "lib" / "python3.13" / "site-packages"
    site.mkdir(parents=True)
    result = freshroot("install", "--root", str(root), "--config", str(tmp_path / "decl.toml"), "--copy-self")
    assert result.returncode == 0, result.stderr
    assert (site / "freshroot" / "cli.py").is_file()
    assert not (root / "usr" / "lib" / "python3" / "dist-packages").exists()
