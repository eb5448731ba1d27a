"""What the generated services run: persist-prepare, persist-files --start/--stop, on a
scratch root in a private mount namespace."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nsutil import in_mount_namespace
from tests.systemd.helpers import env, freshroot, make_root

DECL = """\
[persist."/persist"]
directories = [{ path = "/var/lib/app", user = "app", group = "app", mode = "0750" }, "/var/log"]
files = [
  { path = "/etc/bound.conf", how = "bind", mode = "0640", group = "app" },
  { path = "/etc/linked.conf", how = "symlink" },
]
"""


def mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point (a file bound from the same file system included)."""
    with open("/proc/self/mountinfo") as f:
        points = {line.split()[4].replace("\\040", " ") for line in f}
    return str(path) in points


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, link)
    return out


@pytest.mark.root
@pytest.mark.netns
def test_prepare_then_files_start_and_stop(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", DECL)
    (root / "persist").mkdir()
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "log" / "old.log").write_text("root's log\n")

    def run() -> None:
        prep = freshroot("persist-prepare", "--root", str(root))
        assert prep.returncode == 0, prep.stdout + prep.stderr
        st = (root / "persist" / "var" / "lib" / "app").stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (990, 991, 0o750)
        assert (root / "var" / "lib" / "app").is_dir()  # the mount point
        assert (root / "persist" / "var" / "log").is_dir()
        assert (root / "var" / "log" / "old.log").read_text() == "root's log\n"  # never touched
        assert not (root / "etc" / "bound.conf").exists()  # files are not prepare's
        # What the mount unit would do, so the file inside it lands in storage.
        os.system(f"mount --bind {root}/persist/var/lib/app {root}/var/lib/app")
        before = snapshot(root)

        start = freshroot("persist-files", "--start", "--root", str(root))
        assert start.returncode == 0, start.stdout + start.stderr
        bound = root / "etc" / "bound.conf"
        assert mounted(bound)
        (bound).write_text("kept\n")
        assert (root / "persist" / "etc" / "bound.conf").read_text() == "kept\n"
        s = (root / "persist" / "etc" / "bound.conf").stat()
        assert (s.st_gid, stat.S_IMODE(s.st_mode)) == (991, 0o640)
        assert os.readlink(root / "etc" / "linked.conf") == "/persist/etc/linked.conf"
        changes = json.loads((root / "run/freshroot/journal.json").read_text())["changes"]
        changes += [e for line in (root / "run/freshroot/journal.log").read_text().splitlines()
                    if (e := json.loads(line)).get("event") == "change"]
        assert {c["step"] for c in changes} == {"persist-prepare", "persist-files"}

        stop = freshroot("persist-files", "--stop", "--root", str(root))
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not mounted(bound)
        assert not (root / "etc" / "linked.conf").is_symlink()
        assert (root / "persist" / "etc" / "bound.conf").read_text() == "kept\n"  # data never removed
        after = snapshot(root)
        created = {k for k in after if k not in before}
        # what stays is storage (made by --start, holding data); the state store stays with
        # prepare's changes in it
        assert created <= {"persist/etc", "persist/etc/bound.conf"}, created
        assert {k for k in before if k not in after} == set()

        again = freshroot("persist-files", "--start", "--root", str(root))
        assert again.returncode == 0, again.stdout + again.stderr
        assert (root / "etc" / "bound.conf").read_text() == "kept\n"

    in_mount_namespace(run)


@pytest.mark.parametrize("degraded", [True, False])
def test_missing_storage_is_named(tmp_path: Path, degraded: bool) -> None:
    decl = (f'[persist."/persist"]\nrequire-mount = true\ndegraded = {str(degraded).lower()}\n'
            'directories = ["/var/lib/a", "/var/lib/b"]\nfiles = ["/etc/c"]\n')
    root = make_root(tmp_path / "root", decl)
    (root / "persist").mkdir()
    result = freshroot("persist-prepare", "--root", str(root))
    assert result.returncode == (0 if degraded else 1), result.stdout + result.stderr
    assert "storage /persist is not mounted" in result.stdout  # root-relative, as every message
    assert "NOT persisted this boot: /var/lib/a, /var/lib/b, /etc/c" in result.stdout
    assert ("the boot goes on" in result.stdout) == degraded
    assert not result.stdout.startswith("<")  # no journald priority on a pipe
    assert list((root / "persist").iterdir()) == []  # nothing written to the root's /persist
    files = freshroot("persist-files", "--start", "--root", str(root))
    assert files.returncode == (0 if degraded else 1)
    assert not (root / "etc" / "c").exists()


@pytest.mark.parametrize("degraded", [True, False])
def test_missing_storage_has_its_journal_priority(tmp_path: Path, degraded: bool) -> None:
    """Issue 20: under systemd, stdout is the journal (JOURNAL_STREAM names it): a missing
    storage is logged at err (`journalctl -p err` shows it), a degraded one at warning."""
    decl = (f'[persist."/persist"]\nrequire-mount = true\ndegraded = {str(degraded).lower()}\n'
            'directories = ["/var/lib/a"]\n')
    root = make_root(tmp_path / "root", decl)
    (root / "persist").mkdir()
    log = tmp_path / "journal"
    with open(log, "w") as stream:
        st = os.fstat(stream.fileno())
        proc = subprocess.run([sys.executable, "-m", "freshroot", "persist-prepare", "--root", str(root)],
                              stdout=stream, stderr=subprocess.PIPE, text=True, check=False,
                              env=env(JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"))
    assert proc.returncode == (0 if degraded else 1), proc.stderr
    line = next(x for x in log.read_text().splitlines() if "NOT persisted" in x)
    assert line.startswith("<4>freshroot: storage /persist" if degraded else "<3>freshroot: storage /persist"), line


def test_dry_runs_change_nothing(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", DECL)
    (root / "persist").mkdir()
    before = snapshot(root)
    prep = freshroot("persist-prepare", "--root", str(root), "--dry-run")
    assert prep.returncode == 0, prep.stderr
    assert "would create storage directory /persist/var/lib/app" in prep.stdout
    assert freshroot("persist-files", "--start", "--root", str(root), "--dry-run").returncode == 0
    assert snapshot(root) == before


@pytest.mark.root
def test_a_bad_entry_is_skipped_at_boot_and_the_others_prepared(tmp_path: Path) -> None:
    """As the generator skips it (issue 14 #10), persist-prepare and persist-files do: a
    refusal there would prepare (or bind) nothing at all. The old code prepared the storage
    of the path no unit can mount."""
    root = make_root(tmp_path / "root", '[persist."/persist"]\ndirectories = ["/var/log", "/var/bad ", "/srv"]\n')
    (root / "persist").mkdir()
    prep = freshroot("persist-prepare", "--root", str(root))
    assert prep.returncode == 0, prep.stderr
    assert "freshroot.toml:2: " in prep.stderr
    assert "this entry is skipped" in prep.stderr
    assert (root / "persist" / "var" / "log").is_dir()
    assert (root / "persist" / "srv").is_dir()
    assert not (root / "persist" / "var" / "bad ").exists()
