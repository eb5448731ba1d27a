"""Owners named by users the declaration declares resolve before the users step has run:
install --root, render, the generator, plan; the ids are those the users step then gives."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.systemd.helpers import env, freshroot, generator

pytestmark = pytest.mark.root  # owners other than our own

PASSWD = "root:x:0:0:root:/root:/bin/bash\nsystemd-journal-remote:x:998:998::/:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nsystemd-journal-remote:x:998:\n"

DECLARATION = """\
[users.alice]
[users.app]
system = true
home = "/var/lib/app"

[persist."/persist"]
include = ["ids"]
directories = [{ path = "/var/lib/app", user = "app", group = "app", mode = "0750" }]
users.alice.directories = ["Documents"]
"""


def _root(tmp_path: Path, declaration: str = DECLARATION) -> Path:
    root = tmp_path / "mnt"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (tmp_path / "decl.toml").write_text(declaration)
    return root


def _owner(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def test_install_gives_storage_the_ids_the_users_get_at_first_boot(tmp_path: Path) -> None:
    root = _root(tmp_path)
    result = freshroot("install", "--root", str(root), "--config", str(tmp_path / "decl.toml"))
    assert result.returncode == 0, result.stderr
    # system ids from 999 down, normal ones from 1000 up, as the users step does
    assert _owner(root / "persist" / "var" / "lib" / "app") == (999, 999, 0o750)
    assert _owner(root / "persist" / "home" / "alice" / "Documents")[:2] == (1000, 1000)
    ids = json.loads((root / "persist" / "var" / "lib" / "freshroot" / "ids" / "ids.json").read_text())
    assert ids["users"] == {"alice": 1000, "app": 999}
    assert "app" not in (root / "etc" / "passwd").read_text()  # the users step's job, at boot

    # The users step (what the boot activation runs) then gives exactly these ids.
    applied = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "freshroot",
                              "apply", "--root", str(root)], env=env(), capture_output=True, text=True, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    passwd = (root / "etc" / "passwd").read_text()
    assert "app:x:999:999:" in passwd
    assert "alice:x:1000:1000:" in passwd


def test_remembered_ids_win_over_a_fresh_allocation(tmp_path: Path) -> None:
    root = _root(tmp_path)
    ids = root / "persist" / "var" / "lib" / "freshroot" / "ids"
    ids.mkdir(parents=True)
    (ids / "ids.json").write_text(json.dumps({"users": {"app": 990}, "groups": {"app": 990}}))
    result = freshroot("install", "--root", str(root), "--config", str(tmp_path / "decl.toml"))
    assert result.returncode == 0, result.stderr
    assert _owner(root / "persist" / "var" / "lib" / "app") == (990, 990, 0o750)


def test_plan_render_and_generator_resolve_declared_users(tmp_path: Path) -> None:
    root = _root(tmp_path)
    (root / "etc" / "freshroot").mkdir()
    (root / "etc" / "freshroot" / "freshroot.toml").write_text(DECLARATION)
    (root / "persist").mkdir()
    planned = freshroot("plan", "--root", str(root))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "999" in planned.stdout, planned.stdout
    rendered = freshroot("render", "--root", str(root), "--units", str(tmp_path / "units"))
    assert rendered.returncode == 0, rendered.stderr
    gen = generator(root, tmp_path / "gen")
    assert gen.returncode == 0
    assert "no freshroot units" not in gen.stderr, gen.stderr
    assert any((tmp_path / "gen" / "normal").iterdir())


def test_a_name_neither_root_nor_declaration_has_is_exit_65(tmp_path: Path) -> None:
    root = _root(tmp_path, DECLARATION.replace('user = "app"', 'user = "nobody-here"'))
    result = freshroot("install", "--root", str(root), "--config", str(tmp_path / "decl.toml"))
    assert result.returncode == 65, result.stderr
    assert "nobody-here" in result.stderr
    assert not (root / "persist" / "var" / "lib" / "app").exists()  # nothing changed


def test_config_check_resolves_against_root_and_declaration(tmp_path: Path) -> None:
    root = _root(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "freshroot", "config", "check", "--root", str(root),
                         "--config", str(tmp_path / "decl.toml")], env=env(), capture_output=True, text=True,
                        check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _root(tmp_path / "bad", DECLARATION.replace('user = "app"', 'user = "nobody-here"'))
    refused = subprocess.run([sys.executable, "-m", "freshroot", "config", "check", "--root", str(bad),
                              "--config", str(tmp_path / "bad" / "decl.toml")], env=env(), capture_output=True,
                             text=True, check=False)
    assert refused.returncode == 65, refused.stdout + refused.stderr
    assert "nobody-here" in refused.stderr
