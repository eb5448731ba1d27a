"""Specifiers in system mode on the host, in --user mode, and under --root, against 262.

Only --dry-run is used: nothing is created on the host.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.tmpfiles.syntax_oracle import (
    Result,
    clean_env,
    make_root,
    our_created_paths,
    parse_messages,
    run_ours,
    run_reference,
    would_paths,
)

pytestmark = pytest.mark.oracle

ALL = "d /x/%a/%A/%b/%B/%C/%D/%g/%G/%h/%H/%l/%L/%m/%M/%o/%q/%S/%t/%T/%u/%U/%v/%V/%w/%W/%%\n"
EACH = "".join(f"d /y/{c}/%{c}\n" for c in "aAbBCDgGhHlLmMoqStTuUvVwW")


def _compare(tmp_path: Path, oracles: Path, env: dict[str, str], *, user: bool, root: Path | None,
             body: str = ALL + EACH) -> None:
    conf = tmp_path / "spec.conf"
    conf.write_text(body)
    args = ["--dry-run", "--create", *(["--user"] if user else []), str(conf)]
    if root is None:
        proc = subprocess.run([str(oracles / "systemd-tmpfiles-new"), *args], capture_output=True,
                              env=clean_env(env), check=False, timeout=60)
        lines = proc.stderr.decode().splitlines()
        ref = Result(proc.returncode, [m for m in lines if not m.startswith("Would ")],
                     [m for m in lines if m.startswith("Would ")])
        ours, config = run_ours(Path("/"), [str(conf)], env=env, user=user)
    else:
        ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", str(conf)], env=env)
        ours, config = run_ours(root, [str(conf)], env=env)
    assert parse_messages(ours, (str(conf),)) == parse_messages(ref, (str(conf),))
    assert ours.rc == ref.rc
    assert would_paths(ref, root or Path("")) == our_created_paths(config)


def test_system_mode_on_the_host(tmp_path: Path, oracles: Path) -> None:
    _compare(tmp_path, oracles, {"TMPDIR": str(tmp_path)}, user=False, root=None)


def test_system_mode_under_root(tmp_path: Path, oracles: Path) -> None:
    _compare(tmp_path, oracles, {"TMPDIR": str(tmp_path)}, user=False, root=make_root(tmp_path / "root"))


def test_under_an_uninitialised_root(tmp_path: Path, oracles: Path) -> None:
    root = make_root(tmp_path / "root", os_release=False)
    _compare(tmp_path, oracles, {}, user=False, root=root)
    (root / "etc/machine-id").write_text("uninitialized\n")
    _compare(tmp_path, oracles, {}, user=False, root=root)


@pytest.mark.parametrize("env", [
    {"HOME": "/home/tester", "XDG_RUNTIME_DIR": "/run/user/0"},
    {"HOME": "/home/tester"},
    {"HOME": "/home/tester", "XDG_RUNTIME_DIR": "/r", "XDG_CACHE_HOME": "/cc", "XDG_STATE_HOME": "/ss",
     "XDG_DATA_HOME": "/dd"},
    {"HOME": "/home/tester", "XDG_RUNTIME_DIR": "/r", "XDG_STATE_HOME": "relative"},
])
def test_user_mode(env: dict[str, str], tmp_path: Path, oracles: Path) -> None:
    _compare(tmp_path, oracles, {**env, "TMPDIR": str(tmp_path)}, user=True, root=None)
