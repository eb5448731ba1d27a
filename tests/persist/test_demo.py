"""The README's first command: examples/demo.py runs, keeps what is declared, and leaves nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).parents[2] / "examples" / "demo.py"


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
