"""Progress of a long migrate (issue 20): a tree of 1 GiB migrated on a pseudo-terminal shows
one updating line with bytes, entries, rate and time left; without a terminal one line per
phase; nothing with --json; ``migrate --dry-run`` gives the size and the file count.

The tree is made on a tmpfs in a private mount namespace of a fresh Python (its stderr the
pty's slave), so the test is fast and leaves nothing on the host.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
GiB = 1 << 30

# Runs in a fresh interpreter: a tmpfs scratch root with 1 GiB below /var/lib/big (16 files of
# 60 MiB and 4,096 small ones), then `freshroot migrate` in-process, then checks storage.
SCRIPT = textwrap.dedent("""
    import json, os, sys
    from freshroot.fs import bindmount, mount
    from freshroot.cli import main

    base, argv_json = sys.argv[1], sys.argv[2]
    if os.environ.get("SLOW_ADVANCE"):  # each unit of work counted a little later: a phase that lasts
        import time
        from freshroot import progress
        _advance = progress.Progress.advance

        def advance(self, entries=0, nbytes=0):
            time.sleep(float(os.environ["SLOW_ADVANCE"]))
            _advance(self, entries, nbytes)

        progress.Progress.advance = advance
    bindmount.unshare_mounts()
    mount.mount("tmpfs", base, "tmpfs", data="mode=0755")
    root = base + "/root"
    for d in ("etc", "persist", "var/lib/big/small"):
        os.makedirs(f"{root}/{d}")
    with open(f"{root}/etc/passwd", "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\\n")
    with open(f"{root}/etc/group", "w") as f:
        f.write("root:x:0:\\n")
    with open(f"{root}/decl.toml", "w") as f:
        f.write('[persist."/persist"]\\ndirectories = ["/var/lib/big"]\\n')
    chunk = os.urandom(1 << 20)
    for i in range(16):
        with open(f"{root}/var/lib/big/blob{i}", "wb") as f:
            for _ in range(60):
                f.write(chunk)
    rest = (1 << 30) - 16 * 60 * (1 << 20)
    for i in range(4096):
        with open(f"{root}/var/lib/big/small/{i}", "wb") as f:
            f.write(chunk[: rest // 4096])
    code = main(["migrate", "--root", root, "--config", root + "/decl.toml", *json.loads(argv_json)])
    stored = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(root + "/persist/var/lib/big")
                 for n in ns)
    left = os.listdir(root + "/var/lib/big")
    sys.stdout.write(f"\\nRESULT {code} {stored} {len(left)}\\n")
    sys.stdout.flush()
""")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "TERM": "xterm", "COLUMNS": "200"}


def _on_pty(tmp_path: Path, *argv: str, **extra: str) -> str:
    """Run SCRIPT with stdin, stdout and stderr on a pseudo-terminal (``extra`` added to its
    environment); all it wrote."""
    base = tmp_path / "base"
    base.mkdir()
    pid, master = os.forkpty()
    if pid == 0:  # the child: exec at once (nothing of pytest's state is used)
        try:
            os.execve(sys.executable, [sys.executable, "-c", SCRIPT, str(base), json.dumps(argv)], {**_env(), **extra})
        finally:
            os._exit(127)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                os.kill(pid, 9)
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the slave
                break
            if not data:
                break
            out += data
    finally:
        os.close(master)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def _result(out: str) -> tuple[int, int, int]:
    m = re.search(r"RESULT (\d+) (\d+) (\d+)", out)
    assert m, out
    code, stored, left = (int(g) for g in m.groups())
    return code, stored, left


def test_migrate_of_a_gigabyte_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    out = _on_pty(tmp_path, "/var/lib/big")
    code, stored, left = _result(out)
    assert (code, stored, left) == (0, GiB, 0), out
    # One line redrawn in place ("\r" + erase line), never a new line per update.
    updates = [u for u in out.split("\r\x1b[K") if u.strip()]
    copying = [u for u in updates if u.startswith("copy /var/lib/big: ")]
    assert copying, out
    assert all("\n" not in u for u in copying)
    assert "of 1.0 GiB" in copying[0]
    assert re.search(r"of 4,112 entries", copying[0])  # 16 blobs + 4,096 small files
    assert any(u.startswith("sync /persist/var/lib/big: ") for u in updates), out
    assert any(u.startswith("check and remove /var/lib/big: ") for u in updates), out
    # The line is cleared before the command's own output.
    after = out.rsplit("\r\x1b[K", 1)[1]
    assert after.startswith("create storage directory /persist/var "), after
    assert "move the data of /var/lib/big into /persist/var/lib/big\r\n" in after


def test_rate_and_time_left_are_shown_once_known(tmp_path: Path) -> None:
    """The same run on a pseudo-terminal, each unit of work counted 0.5 ms late so that the
    copy lasts seconds on any machine (a quiet one copies 1 GiB on a tmpfs within the half
    second a rate needs): its updates give a rate and the time left."""
    out = _on_pty(tmp_path, "/var/lib/big", SLOW_ADVANCE="0.0005")
    updates = [u for u in out.split("\r\x1b[K") if u.strip()]
    with_rate = [u for u in updates if re.search(r"\d [KMG]iB/s", u)]
    assert with_rate, out[-2000:]
    assert any(re.search(r", [\d.]+ (s|min \d+ s) left", u) for u in with_rate), with_rate


def test_without_a_terminal_one_line_per_phase_and_nothing_with_json(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(base), json.dumps(["/var/lib/big"])],
                          capture_output=True, text=True, env=_env(), check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _result(proc.stdout) == (0, GiB, 0)
    lines = proc.stderr.splitlines()
    assert "\x1b" not in proc.stderr
    assert "\r" not in proc.stderr
    assert [line.split(":")[0] for line in lines] == [
        "copy /var/lib/big", "sync /persist/var/lib/big", "check and remove /var/lib/big"], lines
    assert re.fullmatch(r"copy /var/lib/big: 1\.0 GiB, 4,112 entries in [\d.]+ (s|min \d+ s)"
                        r"( \([\d.]+ [KMG]iB/s\))?", lines[0]), lines[0]

    base2 = tmp_path / "base2"
    base2.mkdir()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(base2), json.dumps(["/var/lib/big", "--json"])],
                          capture_output=True, text=True, env=_env(), check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    doc = json.loads(proc.stdout.split("\nRESULT")[0])
    assert doc["version"] == 1
    assert doc["failed"] == []


def test_dry_run_gives_size_and_file_count(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(base), json.dumps(["--dry-run", "/var/lib/big"])],
                          capture_output=True, text=True, env=_env(), check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "/var/lib/big: 4,112 files, 1.0 GiB (1,073,741,824 bytes) to migrate" in proc.stdout
    code, stored, left = _result(proc.stdout)
    assert (code, stored, left) == (0, 0, 17)  # nothing moved: 16 blobs and small/ still there
    base2 = tmp_path / "base2"
    base2.mkdir()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(base2),
                           json.dumps(["--dry-run", "--json", "/var/lib/big"])],
                          capture_output=True, text=True, env=_env(), check=False, timeout=300)
    doc = json.loads(proc.stdout.split("\nRESULT")[0])
    assert doc["sizes"] == {"/var/lib/big": {"files": 4112, "bytes": GiB}}
