"""freshroot-tmpfiles --explain PATH: the line and the reason, and nothing changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.tmpfiles.cleantree import HOUR, Node, build, snapshot

TOOL = str(Path(sys.executable).with_name("freshroot-tmpfiles"))
TREE = [Node("t/old", age=2 * HOUR), Node("t/new"), Node("t/sub/x", age=2 * HOUR), Node("t/sub", "d", age=2 * HOUR),
        Node("t/sticky", age=2 * HOUR, mode=0o1644), Node("t", "d", age=2 * HOUR)]
CONF = "d /t - - - am:1h\nx /t/sub\n"


@pytest.mark.parametrize(("path", "expected"), [
    ("/t/old", "/t/old: remove: older than the age (walk of {conf}:1: d /t)"),
    ("/t/new", "/t/new: keep: its modify time is newer than the cutoff (walk of {conf}:1: d /t)"),
    ("/t/sub", "/t/sub: skip: it matches a glob line (x, X or another): {conf}:2: x /t/sub (walk of {conf}:1: d /t)"),
    ("/t/sub/x", ("/t/sub/x: keep: the walk does not enter /t/sub, because it matches a glob line"
                  " (x, X or another): {conf}:2: x /t/sub")),
    ("/t/sticky", "/t/sticky: skip: the sticky bit is set (walk of {conf}:1: d /t)"),
    ("/etc", "/etc: no clean, remove or purge line reaches it; it is left alone"),
])
def test_explain(tmp_path: Path, path: str, expected: str) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text(CONF)
    root = tmp_path / "root"
    build(root, TREE)
    before = snapshot(root)
    out = subprocess.run([TOOL, f"--root={root}", "--explain", path, str(conf)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected.format(conf=conf)
    assert snapshot(root) == before
