"""The generator's units: contents, as systemd runs it, render == generator, verify."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.systemd.helpers import RICH, freshroot, generator, make_root, tree, unit


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "root")
    result = generator(root, tmp_path / "gen")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return tmp_path / "gen" / "normal"


def test_directory_mount_unit(rendered: Path) -> None:
    u = unit(rendered, "var-lib-app\\x2ddata.mount")
    assert u["Mount.What"] == ["/persist/var/lib/app-data"]
    assert u["Mount.Where"] == ["/var/lib/app-data"]
    assert u["Mount.Type"] == ["none"]
    assert u["Mount.Options"] == ["bind,x-gvfs-hide,x-gvfs-trash"]
    assert u["Unit.DefaultDependencies"] == ["no"]
    assert "local-fs.target" in u["Unit.Before"]
    assert u["Unit.Conflicts"] == ["umount.target"]
    assert u["Unit.RequiresMountsFor"] == ["/persist/var/lib/app-data"]
    assert u["Unit.AssertPathIsDirectory"] == ["/persist/var/lib/app-data"]
    assert u["Unit.After"] == ["freshroot-prepare.service"]
    assert "/persist" in u["Unit.Description"][0]


def test_declared_options_and_odd_names(rendered: Path) -> None:
    u = unit(rendered, "srv-data\\x20dir\\x2d\\xc3\\xa9.mount")
    assert u["Mount.Options"] == ["bind,ro,x-gvfs-hide,x-gvfs-trash"]
    assert u["Mount.Where"] == ["/srv/data dir-é"]
    assert u["Unit.RequiresMountsFor"] == ['"/persist/srv/data dir-é"']


def test_user_home_entries(rendered: Path) -> None:
    u = unit(rendered, "home-alice-.ssh.mount")
    assert u["Mount.What"] == ["/persist/home/alice/.ssh"]
    assert (rendered / "local-fs.target.requires" / "home-alice-Documents.mount").is_symlink()


def test_one_service_for_all_files(rendered: Path) -> None:
    services = sorted(p.name for p in rendered.glob("*.service"))
    assert services == ["freshroot-persist-files.service", "freshroot-prepare.service",
                        "freshroot-tmpfiles-resetup.service", "freshroot-tmpfiles-setup.service"]
    u = unit(rendered, "freshroot-persist-files.service")
    assert u["Service.Type"] == ["oneshot"]
    assert u["Service.RemainAfterExit"] == ["yes"]
    assert u["Service.ExecStart"][0].endswith("-m freshroot persist-files --start")
    assert u["Service.ExecStop"][0].endswith("-m freshroot persist-files --stop")
    # after every directory mount, so files inside persisted directories see them
    mounts = {p.name for p in rendered.glob("*.mount")}
    assert mounts <= set(u["Unit.After"])
    assert "freshroot-prepare.service" in u["Unit.After"]
    text = (rendered / "freshroot-persist-files.service").read_text()
    for path in ("/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key", "/etc/adjtime", "/home/alice/.bashrc"):
        assert path in text


def test_prepare_runs_before_the_mounts_and_after_the_storages(rendered: Path) -> None:
    u = unit(rendered, "freshroot-prepare.service")
    assert "persist.mount" in u["Unit.After"]
    assert "data.mount" in u["Unit.After"]
    assert "Requires" not in str(u.keys())  # it must run, and say so, when a storage is missing
    assert u["Service.ExecStart"][0].endswith("-m freshroot persist-prepare")
    assert (rendered / "local-fs.target.requires" / "freshroot-prepare.service").is_symlink()


def test_degraded_storage_is_wanted_not_required(rendered: Path) -> None:
    name = "var-cache-big\\x2dcache.mount"
    assert os.readlink(rendered / "local-fs.target.wants" / name) == "../" + name
    assert not (rendered / "local-fs.target.requires" / name).exists()
    u = unit(rendered, name)
    assert u["Unit.AssertPathIsMountPoint"] == ["/data"]  # require-mount: a clear failure
    # a required storage's mounts are required
    assert (rendered / "local-fs.target.requires" / "var-log.mount").is_symlink()
    assert not (rendered / "local-fs.target.wants" / "var-log.mount").exists()


def test_tmpfiles_units(rendered: Path) -> None:
    setup = unit(rendered, "freshroot-tmpfiles-setup.service")
    assert setup["Service.ExecStart"][0].split()[1:] == ["--create", "--remove", "--boot", "--exclude-prefix=/dev"]
    assert setup["Service.ExecStart"][0].split()[0].endswith("systemd-tmpfiles")  # engine = "systemd"
    assert "tmpfiles render --output /run/tmpfiles.d" in setup["Service.ExecStartPre"][0]
    assert "sysinit.target" in setup["Unit.Before"]
    resetup = unit(rendered, "freshroot-tmpfiles-resetup.service")
    assert "--boot" not in resetup["Service.ExecStart"][0]
    assert (rendered / "sysinit.target.wants" / "freshroot-tmpfiles-setup.service").is_symlink()
    assert not (rendered / "sysinit.target.wants" / "freshroot-tmpfiles-resetup.service").exists()  # apply's


def test_freshroot_engine(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", RICH.replace('engine = "systemd"', 'engine = "freshroot"'))
    assert generator(root, tmp_path / "gen").returncode == 0
    setup = unit(tmp_path / "gen" / "normal", "freshroot-tmpfiles-setup.service")
    assert " -m freshroot tmpfiles --create --remove --boot" in setup["Service.ExecStart"][0]


def test_no_tmpfiles_section_no_tmpfiles_units(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", '[persist."/persist"]\ndirectories = ["/var/lib/x"]\n')
    assert generator(root, tmp_path / "gen").returncode == 0
    names = set(tree(tmp_path / "gen" / "normal"))
    assert names == {"freshroot-prepare.service", "var-lib-x.mount", "local-fs.target.requires/var-lib-x.mount",
                     "local-fs.target.requires/freshroot-prepare.service"}


def test_initrd_has_only_early_paths_below_sysroot(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    result = generator(root, tmp_path / "gen", initrd=True)
    assert result.returncode == 0, result.stderr
    normal = tmp_path / "gen" / "normal"
    assert set(tree(normal)) == {"sysroot-var-log.mount", "initrd-fs.target.requires/sysroot-var-log.mount"}
    u = unit(normal, "sysroot-var-log.mount")
    assert u["Mount.What"] == ["/sysroot/persist/var/log"]
    assert u["Mount.Where"] == ["/sysroot/var/log"]
    assert u["Unit.Before"] == ["initrd-fs.target", "umount.target"]
    assert u["Unit.RequiresMountsFor"] == ["/sysroot/persist/var/log"]


def test_main_system_units_not_written_in_initrd_and_back(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    generator(root, tmp_path / "gen")
    assert "var-log.mount" in tree(tmp_path / "gen" / "normal")  # early paths are mounted after switch too
    assert not list((tmp_path / "gen" / "early").iterdir())
    assert not list((tmp_path / "gen" / "late").iterdir())


def test_render_writes_what_the_generator_writes(rendered: Path, tmp_path: Path) -> None:
    out = tmp_path / "render"
    result = freshroot("render", "--units", str(out), "--root", str(tmp_path / "root"))
    assert result.returncode == 0, result.stderr
    assert tree(out) == tree(rendered)
    assert len(tree(out)) > 10


def test_render_initrd_and_json(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    result = freshroot("render", "--units", str(tmp_path / "r"), "--root", str(root), "--initrd", "--json")
    assert result.returncode == 0, result.stderr
    assert '"sysroot-var-log.mount"' in result.stdout


def test_bad_declaration_never_fails_the_boot(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", '[persist."/persist"]\ndirectories = ["/var/log",\n')
    result = generator(root, tmp_path / "gen")
    assert result.returncode == 0
    assert "freshroot.toml:" in result.stderr
    assert "TOML syntax error" in result.stderr
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "gen" / "normal").iterdir()) == []


# Each path systemd cannot carry in a unit (issue 14 #10), and a plain mistake.
UNRENDERABLE = ["/var/trailing ", "/var/new\nline", "/var/back\\", "/var/" + "x" * 256, "var/relative"]


@pytest.mark.parametrize("bad", UNRENDERABLE)
def test_one_bad_entry_costs_only_that_entry(tmp_path: Path, bad: str) -> None:
    """Before: the generator raised on the bad entry (or on the unit it could not write) and
    wrote nothing, so /var/log and every other declared path went unpersisted."""
    import json

    declaration = (f'[persist."/persist"]\ndirectories = [\n  "/var/log",\n  {json.dumps(bad)},\n'
                   '  { path = "/var/lib/app", options = ["x-a\\nb"] },\n  "/srv"]\nfiles = ["/etc/machine-id"]\n')
    root = make_root(tmp_path / "root", declaration)
    result = generator(root, tmp_path / "gen")
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    normal = tmp_path / "gen" / "normal"
    mounts = sorted(p.name for p in normal.glob("*.mount"))
    assert mounts == ["srv.mount", "var-log.mount"]
    assert (normal / "freshroot-persist-files.service").exists()
    assert "freshroot.toml:4:" in result.stderr  # the bad path, named at its line
    assert "freshroot.toml:5:" in result.stderr  # the option with a newline
    assert result.stderr.count("this entry is skipped") == 2
    # config check refuses what the generator skipped, naming the same line.
    check = freshroot("config", "check", "--root", str(root))
    assert check.returncode == 65
    assert "freshroot.toml:4:" in check.stderr


def test_unknown_user_and_missing_root_never_fail(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", '[persist."/persist"]\ndirectories = [{ path = "/x", user = "nobody2" }]\n')
    assert generator(root, tmp_path / "gen").returncode == 0
    result = generator(tmp_path / "nonexistent", tmp_path / "gen2")
    assert result.returncode == 0
    assert "Traceback" not in result.stderr


def test_render_reports_errors_as_the_cli_does(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", '[tmpfiles]\nengine = "bash"\n')
    result = freshroot("render", "--units", str(tmp_path / "r"), "--root", str(root))
    assert result.returncode == 65
    assert 'must be "freshroot" | "systemd"' in result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize(("initrd", "engine"), [(False, "systemd"), (False, "freshroot"), (True, "systemd")])
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path, initrd: bool, engine: str) -> None:
    """systemd-analyze verify loads the units from the scratch directory (SYSTEMD_UNIT_PATH,
    with the trailing ':' keeping the built-in path for the targets they name): no booted
    systemd is needed. Any warning is a failure, not only a non-zero exit."""
    root = make_root(tmp_path / "root", RICH.replace('engine = "systemd"', f'engine = "{engine}"'))
    assert generator(root, tmp_path / "gen", initrd=initrd).returncode == 0
    normal = tmp_path / "gen" / "normal"
    names = sorted(p.name for p in normal.iterdir() if p.is_file())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names], cwd=normal,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{normal}:", "SYSTEMD_LOG_LEVEL": "notice"},
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="needs systemd-escape")
def test_mount_unit_names_round_trip(rendered: Path) -> None:
    for path in rendered.glob("*.mount"):
        where = unit(rendered, path.name)["Mount.Where"][0]
        back = subprocess.run(["systemd-escape", "--unescape", "--path", path.name.removesuffix(".mount")],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert back == where


def test_all_degraded_storages_never_stop_the_boot(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", '[persist."/persist"]\ndegraded = true\n'
                     'directories = ["/var/lib/x"]\nfiles = ["/etc/y"]\n')
    assert generator(root, tmp_path / "gen").returncode == 0
    links = {k for k, v in tree(tmp_path / "gen" / "normal").items() if v.startswith("-> ")}
    assert links == {"local-fs.target.wants/var-lib-x.mount", "local-fs.target.wants/freshroot-prepare.service",
                     "local-fs.target.wants/freshroot-persist-files.service"}
