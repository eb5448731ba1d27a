"""The generator's units: contents, as systemd runs it, render == generator, verify."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.systemd.units import BOOT_COMMAND
from tests.systemd.helpers import RICH, as_service, freshroot, generator, make_root, tree, unit


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "root")
    result = generator(root, tmp_path / "gen")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return tmp_path / "gen" / "normal"


def test_one_activation_service_does_it_all(rendered: Path) -> None:
    """Issue 19: the whole declaration at every boot, in one process, where NixOS runs its
    activation: after the root and the storages are mounted, before sysinit.target's services."""
    assert sorted(tree(rendered)) == ["freshroot-activate.service", "freshroot-tmpfiles-resetup.service",
                                      "sysinit.target.wants/freshroot-activate.service"]
    u = unit(rendered, "freshroot-activate.service")
    assert u["Service.Type"] == ["oneshot"]
    assert u["Service.RemainAfterExit"] == ["yes"]
    # `freshroot apply --boot` without runpy (freshroot.bootstart), by the generator's interpreter
    assert shlex.split(u["Service.ExecStart"][0]) == [sys.executable, "-I", "-c", BOOT_COMMAND]
    assert u["Unit.DefaultDependencies"] == ["no"]
    after, before = u["Unit.After"], u["Unit.Before"]
    assert {"local-fs.target", "systemd-remount-fs.service", "persist.mount", "data.mount"} <= set(after)
    assert {"sysinit.target", "systemd-tmpfiles-setup.service", "systemd-journal-flush.service",
            "systemd-machine-id-commit.service", "systemd-random-seed.service"} <= set(before)
    assert "Requires" not in str(u.keys())  # a missing storage is said in words; the boot goes on


def test_no_mount_units_in_the_main_system(rendered: Path) -> None:
    """Bind mounts are made by the activation with apply's planner, so boot and apply decide
    the same for every path (image content hidden, user data migrated or refused)."""
    assert not list(rendered.glob("*.mount"))
    assert not (rendered / "local-fs.target.requires").exists()


def test_tmpfiles_resetup_unit_is_apply_s(rendered: Path) -> None:
    resetup = unit(rendered, "freshroot-tmpfiles-resetup.service")
    assert "--boot" not in resetup["Service.ExecStart"][0]
    assert "freshroot-activate.service" in resetup["Unit.After"]
    assert not (rendered / "sysinit.target.wants" / "freshroot-tmpfiles-resetup.service").exists()


def test_no_tmpfiles_section_no_tmpfiles_units(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", '[persist."/persist"]\ndirectories = ["/var/lib/x"]\n')
    assert generator(root, tmp_path / "gen").returncode == 0
    names = set(tree(tmp_path / "gen" / "normal"))
    assert names == {"freshroot-activate.service", "sysinit.target.wants/freshroot-activate.service"}


def test_a_declaration_without_persist_still_activates(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", '[users.app]\nsystem = true\n')
    assert generator(root, tmp_path / "gen").returncode == 0
    u = unit(tmp_path / "gen" / "normal", "freshroot-activate.service")
    assert "persist.mount" not in u["Unit.After"]


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
    # The storage's x-initrd.mount is only known, and a volatile root only in place, then.
    assert u["Unit.After"] == ["initrd-parse-etc.service"]


def test_main_system_units_not_written_in_initrd_and_back(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    generator(root, tmp_path / "gen")
    assert "var-log.mount" not in tree(tmp_path / "gen" / "normal")  # the activation binds it after switch
    assert not list((tmp_path / "gen" / "early").iterdir())
    assert not list((tmp_path / "gen" / "late").iterdir())


def test_render_writes_what_the_generator_writes(rendered: Path, tmp_path: Path) -> None:
    out = tmp_path / "render"
    result = freshroot("render", "--units", str(out), "--root", str(tmp_path / "root"))
    assert result.returncode == 0, result.stderr
    written = tree(out)
    assert ".freshroot-units.json" in written  # what render wrote, for the next render's clean-up
    del written[".freshroot-units.json"]
    assert written == tree(rendered)
    assert len(written) == 3


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
    wrote nothing, so /var/log and every other declared path went unpersisted. Now the
    generator writes the activation (checking nothing: that is the activation's, in the same
    process that acts), and at boot the activation binds every other entry and fails
    (priority err) naming the bad ones."""
    import json

    declaration = (f'[persist."/persist"]\ndirectories = [\n  "/var/log",\n  {json.dumps(bad)},\n'
                   '  { path = "/var/lib/app", options = ["x-a\\nb"] },\n  "/srv"]\nfiles = ["/etc/machine-id"]\n')
    root = make_root(tmp_path / "root", declaration)
    result = generator(root, tmp_path / "gen")
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    normal = tmp_path / "gen" / "normal"
    assert (normal / "freshroot-activate.service").exists()
    assert result.stderr == ""
    if os.geteuid() == 0:
        for d in ("persist", "run", "var/log", "srv"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "var" / "log" / "old.log").write_text("image\n")
        boot = as_service(["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "freshroot",
                           "apply", "--boot", "--root", str(root)], tmp_path / "journal")
        out = boot.stdout + boot.stderr
        assert boot.returncode == 1, out  # the unit fails: systemctl --failed names it
        assert "Traceback" not in out, out
        assert "<3>freshroot: step persist failed" in out, out
        assert "freshroot.toml:4:" in out, out
        assert "freshroot.toml:5:" in out, out
        # every other entry was applied: storage made for them (binds end with the namespace)
        assert (root / "persist" / "var" / "log").is_dir(), out
        assert (root / "persist" / "srv").is_dir(), out
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
def test_mount_unit_names_round_trip(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", RICH.replace('"/var/lib/app-data"', '{ path = "/srv/a b-é", early = true }'))
    assert generator(root, tmp_path / "gen", initrd=True).returncode == 0
    rendered = tmp_path / "gen" / "normal"
    assert len(list(rendered.glob("*.mount"))) == 2
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
    assert links == {"sysinit.target.wants/freshroot-activate.service"}  # wanted: a failure never stops it
