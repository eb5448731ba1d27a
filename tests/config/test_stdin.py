"""``--config -`` reads standard input, and ``--config`` takes a pipe (issue 15 #6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).parents[2] / "src")


def freshroot(*args: str, stdin: str = "", pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "freshroot", *args], input=stdin, capture_output=True, text=True,
                          check=False, env=env, pass_fds=pass_fds)


def test_config_dash_reads_stdin_and_names_it_in_errors(tmp_path: Path) -> None:
    good = freshroot("config", "check", "--root", str(tmp_path), "--config", "-", stdin='[etc.motd]\ntext = "hi"\n')
    assert good.returncode == 0, good.stderr
    assert "[etc]: valid" in good.stdout
    bad = freshroot("config", "check", "--root", str(tmp_path), "--config", "-",
                    stdin='[persist."/persist"]\ndirectories = ["relative"]\n')
    assert bad.returncode == 65
    assert "<stdin>:2:" in bad.stderr
    shown = freshroot("config", "show", "--root", str(tmp_path), "--config", "-", stdin='[etc.motd]\ntext = "hi"\n')
    assert 'text = "hi"' in shown.stdout


def test_config_dash_twice_is_refused(tmp_path: Path) -> None:
    result = freshroot("config", "check", "--root", str(tmp_path), "--config", "-", "--config", "-", stdin="")
    assert result.returncode == 65
    assert "once" in result.stderr


def test_config_takes_a_pipe(tmp_path: Path) -> None:
    """Before: 'cannot read the declaration: not a regular file' (a shell's <(...))."""
    r, w = os.pipe()
    os.write(w, b'[persist."/persist"]\ndirectories = ["rel"]\n')
    os.close(w)
    try:
        result = freshroot("config", "check", "--root", str(tmp_path), "--config", f"/dev/fd/{r}", pass_fds=(r,))
    finally:
        os.close(r)
    assert result.returncode == 65
    assert f"/dev/fd/{r}:2:" in result.stderr
    assert "absolute" in result.stderr
