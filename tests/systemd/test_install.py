"""freshroot install: storage directories with numeric owners, the declaration, the generator,
and the --extra-files tree for nixos-anywhere."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.systemd.helpers import GROUP, PASSWD, RICH, env, freshroot, make_root

pytestmark = pytest.mark.root  # owners other than our own


def owner(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    root = tmp_path / "mnt"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (tmp_path / "decl.toml").write_text(RICH)
    return root


def test_install_root(target: Path, tmp_path: Path) -> None:
    # An existing parent with an unusual owner and mode must stay as it is.
    (target / "persist" / "var").mkdir(parents=True)
    os.chown(target / "persist" / "var", 0, 8)
    os.chmod(target / "persist" / "var", 0o711)
    result = freshroot("install", "--root", str(target), "--config", str(tmp_path / "decl.toml"))
    assert result.returncode == 0, result.stderr
    p = target / "persist"
    assert owner(p / "var") == (0, 8, 0o711)
    assert owner(p / "srv" / "data dir-é") == (990, 991, 0o750)
    assert owner(p / "var" / "lib" / "private" / "secret") == (990, 0, 0o700)
    assert owner(p / "home" / "alice") == (1000, 1000, 0o700)
    assert owner(p / "home" / "alice" / ".ssh") == (1000, 1000, 0o755)
    assert owner(p / "var" / "log") == (0, 0, 0o755)
    assert owner(p / "etc" / "ssh") == (0, 0, 0o755)  # parents of persisted files too
    # the machine id is written before the first boot, into storage and the root's empty file
    machine_id = (p / "etc" / "machine-id").read_text().strip()
    assert len(machine_id) == 32
    assert (target / "etc" / "machine-id").read_text().strip() == machine_id
    assert not (p / "etc" / "adjtime").exists()  # other files are the activation's, at boot
    assert (target / "data" / "var" / "cache" / "big-cache").is_dir()
    assert (target / "etc" / "freshroot" / "freshroot.toml").read_text() == RICH
    gen = target / "usr" / "lib" / "systemd" / "system-generators" / "freshroot-generator"
    assert owner(gen) == (0, 0, 0o755)
    assert gen.read_text().startswith("#!/usr/bin/python3")
    assert not (target / "run").exists()  # no journal in the image
    assert not (target / "var").exists()  # mount points are made at boot
    assert "--copy-self" in result.stderr  # says how freshroot gets into the target


def test_install_keeps_an_existing_declaration_and_is_idempotent(target: Path, tmp_path: Path) -> None:
    make_root_decl = target / "etc" / "freshroot"
    make_root_decl.mkdir()
    (make_root_decl / "freshroot.toml").write_text('[persist."/persist"]\ndirectories = ["/var/lib/mine"]\n')
    result = freshroot("install", "--root", str(target), "--config", str(tmp_path / "decl.toml"))
    assert result.returncode == 0, result.stderr
    assert "kept the declaration" in result.stdout
    assert (target / "etc" / "freshroot" / "freshroot.toml").read_text().endswith('["/var/lib/mine"]\n')
    again = freshroot("install", "--root", str(target))
    assert again.returncode == 0, again.stderr
    assert "create storage" not in again.stdout  # nothing left to create


def test_install_without_any_declaration_says_what_to_do(target: Path) -> None:
    result = freshroot("install", "--root", str(target))
    assert result.returncode == 65  # a missing argument
    assert "--config" in result.stderr


def test_extra_files_tree(target: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    result = freshroot("install", "--extra-files", str(extra), "--root", str(target),
                       "--config", str(tmp_path / "decl.toml"))
    assert result.returncode == 0, result.stderr
    top = sorted(p.name for p in extra.iterdir())
    assert top == ["data", "etc", "persist", "usr"]
    assert owner(extra / "persist" / "srv" / "data dir-é") == (990, 991, 0o750)  # from --root's passwd
    assert (extra / "etc" / "freshroot" / "freshroot.toml").read_text() == RICH
    assert (extra / "usr" / "lib" / "systemd" / "system-generators" / "freshroot-generator").is_file()
    assert not (target / "persist").exists()  # the target root is only read
    assert not (extra / "var").exists()


def test_dry_run_changes_nothing(target: Path, tmp_path: Path) -> None:
    result = freshroot("install", "--root", str(target), "--config", str(tmp_path / "decl.toml"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would create storage directory /persist/var/log" in result.stdout
    assert sorted(p.name for p in target.iterdir()) == ["etc"]
    assert sorted(p.name for p in (target / "etc").iterdir()) == ["group", "passwd"]


def test_copy_self_gives_a_working_generator(target: Path, tmp_path: Path) -> None:
    result = freshroot("install", "--root", str(target), "--config", str(tmp_path / "decl.toml"), "--copy-self")
    assert result.returncode == 0, result.stderr
    site = target / "usr" / "lib" / "python3" / "dist-packages"
    assert (site / "freshroot" / "systemd" / "generator.py").is_file()
    assert os.access(target / "usr" / "bin" / "freshroot", os.X_OK)
    # The installed generator script, run with the copied package, writes the units.
    out = tmp_path / "gen"
    gen = target / "usr" / "lib" / "systemd" / "system-generators" / "freshroot-generator"
    run = subprocess.run(
        [sys.executable, str(gen), str(out), str(out), str(out)],
        env={**env(FRESHROOT_GENERATOR_ROOT=str(target)), "PYTHONPATH": str(site)},
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    assert (out / "freshroot-activate.service").is_file()


def test_generator_script_without_freshroot_exits_zero(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    result = freshroot("install", "--root", str(root))
    assert result.returncode == 0, result.stderr
    gen = root / "usr" / "lib" / "systemd" / "system-generators" / "freshroot-generator"
    # -S: no site-packages, so this Python cannot import freshroot (the venv's editable install
    # included), as on a machine where the package is missing.
    run = subprocess.run([sys.executable, "-I", "-S", str(gen), str(tmp_path)], env={"PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=False, cwd="/")
    assert "freshroot is not installed" in run.stderr
    assert run.returncode == 0
