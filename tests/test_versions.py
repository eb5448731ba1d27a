"""--help and --version of the three programs an admin runs by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot import __version__

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(module: str, function: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = f"import sys; from {module} import {function}; sys.exit({function}())"
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize("option", ["--help", "-h"])
def test_generator_help_prints_usage_and_writes_nothing(tmp_path, option):
    """It used to take --help for NORMAL-DIR and create a directory named --help."""
    result = run("freshroot.systemd.generator", "main", option, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: freshroot-generator")
    assert "freshroot-generator(8)" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_generator_version(tmp_path):
    result = run("freshroot.systemd.generator", "main", "--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"freshroot-generator (freshroot) {__version__}\n")
    assert list(tmp_path.iterdir()) == []


def test_generator_unknown_option_is_a_usage_error(tmp_path):
    result = run("freshroot.systemd.generator", "main", "--frob", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: freshroot-generator")
    assert list(tmp_path.iterdir()) == []


def test_tmpfiles_version_first_line_is_systemds_format(tmp_path):
    """Line 1 as systemd 262's `systemd-tmpfiles --version` writes it (scripts read the release
    from it); freshroot's own version on a later line."""
    result = run("freshroot.tmpfiles.commands", "main", "--version", cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "systemd 262 (262)"
    assert lines[1].startswith("+ACL")
    assert f"freshroot {__version__}" in lines[2]


@pytest.mark.oracle
def test_tmpfiles_version_matches_the_oracles_first_word_and_release(oracles):
    """The reference systemd-tmpfiles (tools/fetch-oracles) says the same release first."""
    theirs = subprocess.run([oracles / "systemd-tmpfiles-new", "--version"],
                            capture_output=True, text=True, check=True).stdout
    from freshroot.tmpfiles.commands import version_text

    assert theirs.split()[:2] == version_text().split()[:2]


def test_freshroot_version(tmp_path):
    result = run("freshroot.cli", "main", "--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"freshroot {__version__}\n")
