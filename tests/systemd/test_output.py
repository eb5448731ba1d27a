"""Bind-mount units and the unit directory writer, checked by systemd-analyze verify."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from freshroot.fs.ops import open_root
from freshroot.systemd.mounts import BindMount
from freshroot.systemd.output import Dependency, UnitDirectory
from freshroot.systemd.unit import UnitFile

ANALYZE = shutil.which("systemd-analyze")
MOUNTS = [
    BindMount("/persist/var/lib/my-app", "/var/lib/my-app"),
    BindMount("/persist/srv/a b/é", "/srv/a b/é", options=("x-gvfs-hide", "nosuid")),
    BindMount("/persist/home/alice/.local/50%", "/home/alice/.local/50%", options=("x-gvfs-trash",)),
    BindMount("/persist/var/log", "/var/log", sysroot="/sysroot", before=("initrd-fs.target",)),
]


def write_all(directory: Path) -> UnitDirectory:
    fd = open_root(str(directory))
    try:
        out = UnitDirectory(fd)
        for mount in MOUNTS:
            out.write(mount.unit())
            target = mount.before[0]
            out.add_dependency(target, Dependency.REQUIRES, mount.unit_name)
            out.add_dependency(target, Dependency.REQUIRES, mount.unit_name)  # idempotent
        drop_in = UnitFile("ignored")
        drop_in.section("Unit").add("Description", "overridden")
        out.drop_in(MOUNTS[0].unit_name, "50-test", drop_in)
    finally:
        os.close(fd)
    return out


def test_unit_directory_layout(tmp_path):
    out = write_all(tmp_path)
    assert (tmp_path / "var-lib-my\\x2dapp.mount").is_file()
    assert (tmp_path / "srv-a\\x20b-\\xc3\\xa9.mount").is_file()
    assert (tmp_path / "sysroot-var-log.mount").is_file()
    link = tmp_path / "local-fs.target.requires" / "var-lib-my\\x2dapp.mount"
    assert os.readlink(link) == "../var-lib-my\\x2dapp.mount"
    assert (tmp_path / "initrd-fs.target.requires" / "sysroot-var-log.mount").is_symlink()
    assert (tmp_path / "var-lib-my\\x2dapp.mount.d" / "50-test.conf").read_text() == (
        "[Unit]\nDescription=overridden\n"
    )
    assert len(out.written) == len(MOUNTS) * 3 + 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".#")]  # no temporary files left


def test_mount_unit_text():
    text = MOUNTS[1].unit().render()
    assert "What=/persist/srv/a b/é\n" in text
    assert "Where=/srv/a b/é\n" in text
    assert 'RequiresMountsFor="/persist/srv/a b/é"\n' in text
    assert "Options=bind,x-gvfs-hide,nosuid\n" in text
    assert "DefaultDependencies=no\n" in text
    early = MOUNTS[3].unit().render()
    assert "What=/sysroot/persist/var/log\n" in early
    assert "Before=initrd-fs.target\nBefore=umount.target\n" in early


def test_a_different_link_is_not_replaced(tmp_path):
    (tmp_path / "local-fs.target.wants").mkdir()
    (tmp_path / "local-fs.target.wants" / "x.mount").symlink_to("/elsewhere")
    fd = open_root(str(tmp_path))
    try:
        with pytest.raises(FileExistsError):
            UnitDirectory(fd).add_dependency("local-fs.target", Dependency.WANTS, "x.mount")
    finally:
        os.close(fd)


@pytest.mark.skipif(ANALYZE is None, reason="needs systemd-analyze (./dev.sh setup)")
def test_systemd_analyze_verify_accepts_the_mount_units(tmp_path):
    write_all(tmp_path)
    units = sorted(str(p) for p in tmp_path.glob("*.mount"))
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:", "SYSTEMD_LOG_COLOR": "0"}
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "verify", "--man=no", *units], env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
