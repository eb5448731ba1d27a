"""freshroot-tmpfiles never acts through a symlink a user planted (issue 4's attack suite).

The count systemd-tmpfiles falls for on the same suite is reported by bench/symlink_attacks.py.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.tmpfiles.attacks import ATTACKS, planted, raced

pytestmark = [pytest.mark.root]

# The venv entry point, as users run it.
OURS = [str(Path(sys.executable).with_name("freshroot-tmpfiles"))]


@pytest.mark.parametrize(("name", "line", "op"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_planted_symlink(tmp_path: Path, name: str, line: str, op: str) -> None:
    assert not planted(OURS, tmp_path / "root", line, op), f"{name}: /secret changed"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "line", "op"), [a for a in ATTACKS if a[0] in {"R", "D", "clean", "Z", "w"}],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 6 else "")
def test_symlink_swapped_during_the_run(tmp_path: Path, name: str, line: str, op: str) -> None:
    assert not raced(OURS, tmp_path / "root", line, op, rounds=10), f"{name}: /secret changed"


def test_suite_detects_a_naive_tool(tmp_path: Path) -> None:
    """The fingerprint really sees an attack: a tool that follows the link changes /secret."""
    naive = tmp_path / "naive"
    naive.write_text("#!/bin/sh\nroot=${1#--root=}\nrm -rf \"$root/home/mallory/link/dir/\"*\n")
    naive.chmod(0o755)
    assert planted([str(naive)], tmp_path / "root", "R {p}/dir", "--remove")
    shutil.rmtree(tmp_path / "root")
