"""The README's first command: examples/demo.py runs, keeps what is declared, and leaves
nothing; `./dev.sh demo` installs nothing but what it needs (Python) and shows freshroot's
own output, unedited (issue 20)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
DEMO = REPO / "examples" / "demo.py"


@pytest.mark.root
@pytest.mark.netns
def test_demo(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, env=env, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "8 kept, 3 gone (the gone ones were never declared)" in out
    assert "/var/lib/forgotten" in out  # the audit names what will be lost
    assert "/persist/var/lib/old-service" in out  # and what storage holds undeclared
    assert "unmounted /var/log" in out
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    # freshroot's real output: the report names the scratch root it applied to, never "/"
    roots = re.findall(r"^apply to (\S+)$", out, re.M)
    assert roots
    assert all(re.fullmatch(re.escape(str(tmp_path)) + r"/freshroot-demo-\w+/root", r) for r in roots), roots


@pytest.mark.root
@pytest.mark.netns
def test_dev_sh_demo_installs_nothing_else(tmp_path: Path) -> None:
    """dev.sh demo in a copy of the repository: no .venv, no pip, no apt-get (python3 is
    there), and the demo runs."""
    if not shutil.which("dpkg-query"):
        pytest.skip("dev.sh's package check needs dpkg-query (Debian)")
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(REPO / "dev.sh", copy / "dev.sh")
    shutil.copytree(REPO / "examples", copy / "examples")
    shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    calls = tmp_path / "calls"
    for tool in ("apt-get", "pip", "pip3"):
        (stubs / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\nexit 99\n')
        (stubs / tool).chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "TMPDIR": str(scratch)}
    proc = subprocess.run(["bash", str(copy / "dev.sh"), "demo"], capture_output=True, text=True, env=env,
                          check=False, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert not calls.exists(), calls.read_text()
    assert not (copy / ".venv").exists()
    assert "8 kept, 3 gone" in proc.stdout
