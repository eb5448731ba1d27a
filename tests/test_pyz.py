"""freshroot.pyz (tools/make-pyz, freshroot.deploy.pyz): one file that runs freshroot with
the right exit codes from a directory without the source, reads its package data (presets,
initrd assets) from inside the zip, is built reproducibly, and `install --copy-self` from it
puts the package, unzipped, into the target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import freshroot
from freshroot.deploy import pyz

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "freshroot"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}

GOOD = """\
[persist."/persist"]
include = ["machine-id"]
directories = [{ path = "/var/lib/app", mode = "0750" }]
"""
BAD = """\
[persist."/persist"]
directories = [1]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "freshroot.pyz"
    # The interpreter of the in-process build of the reproducibility test: .pyc bytes are its own.
    result = subprocess.run([str(REPO / "tools" / "make-pyz"), str(out)], env={**ENV, "PYTHON": sys.executable},
                            capture_output=True, text=True, check=False, cwd="/")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory without the source, with a good and a bad declaration."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "good.toml").write_text(GOOD)
    (work / "bad.toml").write_text(BAD)
    return work


def run_pyz(built: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -I: no PYTHONPATH, no user site, no script directory: only the pyz provides freshroot.
    return subprocess.run([sys.executable, "-I", str(built), *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, check=False)


def test_it_is_one_reproducible_zipapp(built: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.pyz"
    assert pyz.write(str(again)) == again.stat().st_size
    assert again.read_bytes() == built.read_bytes()  # same tree, same bytes
    data = built.read_bytes()
    assert data.startswith(b"#!/usr/bin/env python3\n")
    assert os.access(built, os.X_OK)
    with zipfile.ZipFile(built) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.read("__main__.py").decode().endswith("from freshroot.cli import main\nsys.exit(main())\n")
        # Every file of the package, byte for byte, and no stray cache of the source tree.
        for path in SRC.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                rel = "freshroot/" + path.relative_to(SRC).as_posix()
                assert archive.read(rel) == path.read_bytes(), rel
        assert not [n for n in names if "__pycache__" in n]
        # Unchecked hash-based .pyc beside each module: zipimport loads them without compiling.
        pyc = archive.read("freshroot/cli.pyc")
        assert pyc[4:8] == (1).to_bytes(4, "little")


def test_version_and_help(built: Path, elsewhere: Path) -> None:
    version = run_pyz(built, elsewhere, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.split() == ["freshroot", freshroot.__version__]
    helped = run_pyz(built, elsewhere, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "deploy" in helped.stdout
    assert "install" in helped.stdout
    unknown = run_pyz(built, elsewhere, "no-such-command")
    assert unknown.returncode == 65


def test_config_check_exit_codes(built: Path, elsewhere: Path) -> None:
    good = run_pyz(built, elsewhere, "config", "check", "--config", "good.toml")
    assert good.returncode == 0, good.stderr
    bad = run_pyz(built, elsewhere, "config", "check", "--config", "bad.toml")
    assert bad.returncode == 65
    assert "bad.toml:2:" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = run_pyz(built, elsewhere, "config", "check", "--config", "absent.toml")
    assert missing.returncode == 65, missing.stderr


def test_plan_reads_the_preset_from_the_zip(built: Path, elsewhere: Path) -> None:
    root = elsewhere / "root"
    (root / "etc").mkdir(parents=True)
    (root / "persist").mkdir()
    result = run_pyz(built, elsewhere, "plan", "--json", "--root", str(root), "--config", "good.toml")
    assert result.returncode == 0, result.stderr
    # /etc/machine-id comes from the machine-id preset, read out of the zip; /var/lib/app from the file.
    assert "/etc/machine-id" in result.stdout
    assert "/var/lib/app" in result.stdout
    assert sorted(p.name for p in root.iterdir()) == ["etc", "persist"]  # a plan changes nothing


def test_package_data_is_read_from_inside_the_zip(built: Path, elsewhere: Path) -> None:
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import freshroot\n"
        "from freshroot.root.initrd import asset\n"
        "from freshroot.persist.presets import load, names\n"
        "assert freshroot.__file__.startswith(sys.argv[1]), freshroot.__file__\n"
        "assert 'machine-id' in names(), names()\n"
        "assert load('machine-id') is not None\n"
        "sys.stdout.buffer.write(asset('dracut/module-setup.sh'))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", probe, str(built)], cwd=elsewhere, env=ENV,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == (SRC / "root" / "dracut" / "module-setup.sh").read_bytes()


@pytest.mark.root  # install gives storage directories their owners
def test_install_copy_self_unzips_the_package(built: Path, elsewhere: Path) -> None:
    target = elsewhere / "mnt"
    (target / "etc").mkdir(parents=True)
    (target / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (target / "etc" / "group").write_text("root:x:0:\n")
    result = run_pyz(built, elsewhere, "install", "--root", str(target), "--config", "good.toml", "--copy-self")
    assert result.returncode == 0, result.stderr
    site = target / "usr" / "lib" / "python3" / "dist-packages" / "freshroot"
    assert (site / "cli.py").read_bytes() == (SRC / "cli.py").read_bytes()
    assert (site / "root" / "dracut" / "module-setup.sh").read_bytes() == \
        (SRC / "root" / "dracut" / "module-setup.sh").read_bytes()
    assert not list(site.rglob("*.pyc"))  # the zip's caches are this builder's Python's, not the target's
    assert (target / "persist" / "var" / "lib" / "app").is_dir()
    # The copied package runs on its own.
    boot = "import sys; sys.path.insert(0, sys.argv[1]); from freshroot.cli import main; sys.exit(main(['--version']))"
    copied = subprocess.run([sys.executable, "-I", "-c", boot, str(site.parent)],
                            cwd=elsewhere, env=ENV, capture_output=True, text=True, check=False)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.split() == ["freshroot", freshroot.__version__]


def test_the_rollback_timer_runs_the_pyz_again(built: Path, elsewhere: Path) -> None:
    # apply --confirm-timeout's timer runs "this very freshroot": from a pyz, the pyz.
    probe = ("import json, sys; sys.path.insert(0, sys.argv[1])\n"
             "from freshroot.generations.timer import freshroot_argv\n"
             "print(json.dumps(freshroot_argv('--version')))\n")
    result = subprocess.run([sys.executable, "-I", "-c", probe, str(built)], cwd=elsewhere, env=ENV,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)
    assert str(built) in argv
    again = subprocess.run(argv, cwd=elsewhere, env=ENV, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["freshroot", freshroot.__version__]
