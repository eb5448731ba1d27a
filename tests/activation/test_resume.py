"""A killed apply (kill -9 mid-step) is resumed from its journal and completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import freshroot

from .helpers import journal_of, make_root, write_decl

DECL = '''
[activation.a]
text = 'echo a >> "$FRESHROOT_ROOT/count-a"'

[activation.b]
deps = ["a"]
text = """
if [ ! -e "$FRESHROOT_ROOT/go" ]; then
  echo $$ > "$FRESHROOT_ROOT/b-started"
  sleep 60
fi
echo b >> "$FRESHROOT_ROOT/count-b"
"""

[activation.c]
deps = ["b"]
text = 'touch "$FRESHROOT_ROOT/c"'
'''


def _freshroot(*args: str) -> list[str]:
    return [sys.executable, "-m", "freshroot", *args]


def _env() -> dict[str, str]:
    src = str(Path(freshroot.__file__).parent.parent)
    return {**os.environ, "PYTHONPATH": src}


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def test_killed_apply_resumes_and_completes(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL)
    proc = subprocess.Popen(_freshroot("apply", "--root", str(root), "--config", decl),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (root / "b-started").exists():
            assert time.monotonic() < deadline, "snippet b never started"
            assert proc.poll() is None
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # by pid, mid-step
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    snippet_pid = int((root / "b-started").read_text())
    assert _group(snippet_pid), "the half-run snippet (and its sleep) are still running"
    journal = journal_of(root)
    assert journal is not None
    assert journal["state"] == "running"
    assert journal["steps"]["a"]["state"] == "done"
    assert journal["steps"]["b"]["state"] == "running"

    killed = _status(root, decl)
    assert killed["state"] == "killed"
    assert set(killed["steps"]) == {"done", "running"}
    assert killed["steps"]["running"] == ["b"]
    assert "a" in killed["steps"]["done"]
    assert "c" not in killed["steps"]["done"]

    (root / "go").touch()
    done = subprocess.run(_freshroot("apply", "--json", "--root", str(root), "--config", decl),
                          env=_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["run_id"] == journal["run_id"]
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["a"].get("resumed") is True
    assert (root / "count-a").read_text() == "a\n"  # not run twice
    assert (root / "count-b").read_text() == "b\n"
    assert (root / "c").exists()
    assert _group(snippet_pid) == []  # the resumed run stopped what the killed one left running
    finished = _status(root, decl)
    assert (finished["state"], finished["run_id"]) == ("finished", journal["run_id"])
    assert set(finished["steps"]) == {"done"}
    assert {"a", "b", "c"} <= set(finished["steps"]["done"])
    assert json.loads((root / "run/freshroot/journal.json").read_text())["state"] == "finished"


def _status(root: Path, decl: str) -> dict[str, Any]:
    """The last apply, as ``freshroot status`` reads it from the journal."""
    out = subprocess.run(_freshroot("status", "--json", "--root", str(root), "--config", decl),
                         env=_env(), capture_output=True, text=True, timeout=60, check=True)
    run = json.loads(out.stdout)["last_apply"]
    assert isinstance(run, dict)
    return run
