"""The state store against races and forgeries (issue 14 #6): undo and apply under one lock, so
no mount is ever left unrecorded; a store a user could have written is refused, never read or
truncated. Run through the command line, as an admin would."""

from __future__ import annotations

import os
import random
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from freshroot.fs.mount import mountinfo
from tests.fs.helpers import in_child
from tests.nsutil import in_mount_namespace

REPO = Path(__file__).resolve().parents[2]
DIRECTORIES = 200
ROUNDS = 12
PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
GROUP = "root:x:0:\n"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _cli(*args: str, cpu: int | None = None) -> subprocess.Popen[str]:
    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu % os.cpu_count()})  # type: ignore[operator]

    return subprocess.Popen([sys.executable, "-m", "freshroot", *args], env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=pin)  # noqa: PLW1509


def _make_root(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    for i in range(DIRECTORIES):
        (root / f"persist/srv/d{i:03}").mkdir(parents=True)
    names = ", ".join(f'"/srv/d{i:03}"' for i in range(DIRECTORIES))
    decl = root.parent / f"{root.name}.toml"
    decl.write_text(f'[persist."/persist"]\ndirectories = [{names}]\n')
    return decl


def _mounted_below(root: Path) -> set[str]:
    prefix = str(root) + "/"
    return {m.mount_point[len(str(root)):] for m in mountinfo() if m.mount_point.startswith(prefix)}


def _recorded(root: Path) -> str:
    """What undo would revert, as ``undo --dry-run`` lists it."""
    proc = _cli("undo", "--root", str(root), "--dry-run")
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    return out


def _round(base: Path, n: int, rng: random.Random) -> list[str]:
    root = base / f"root{n}"
    decl = _make_root(root)
    apply = _cli("apply", "--root", str(root), "--config", str(decl), cpu=0)
    time.sleep(rng.uniform(0.05, 0.6))  # python's start-up, then somewhere in the apply
    undo = _cli("undo", "--root", str(root), cpu=1)
    undo.communicate()
    apply.communicate()
    listed = _recorded(root)
    lost = [m for m in sorted(_mounted_below(root))
            if not re.search(rf" {re.escape(m)}(\s|$)", listed)]
    # Clean up what either left, through the store; whatever is still mounted is unrecorded.
    subprocess.run([sys.executable, "-m", "freshroot", "undo", "--root", str(root)], env=_env(),
                   capture_output=True, check=False)
    for m in sorted(_mounted_below(root), reverse=True):
        subprocess.run(["umount", "-l", str(root) + m], check=False)
    return lost


@pytest.mark.root
@pytest.mark.slow
def test_undo_racing_apply_never_loses_a_mount(scratch: Path) -> None:
    """apply (CPU 0) and undo (CPU 1) started together, again and again: afterwards every
    mount below the root is one the store records (so a later undo removes it)."""

    def body() -> list[str]:
        rng = random.Random(14)  # noqa: S311 - test timing, not crypto
        lost: list[str] = []
        for n in range(ROUNDS):
            lost += [f"round {n}: {m}" for m in _round(scratch, n, rng)]
        return lost

    lost = in_mount_namespace(body)
    assert lost == [], f"{len(lost)} mounts left that no record names: {lost[:5]}"


def _forge(root: Path, how: str) -> None:
    """A /run/freshroot with a record telling undo to make /etc/shadow 0666, in both the old
    (persist.jsonl) and the current (journal.json) format."""
    shadow = root / "etc/shadow"
    shadow.write_text("root:!:1::::::\n")
    os.chmod(shadow, 0o640)
    store = root / "run/freshroot"
    store.mkdir(parents=True)
    os.chmod(store, 0o777 if how == "user-file" else 0o755)
    (store / "persist.jsonl").write_text('{"op":"perms","path":"/etc/shadow","old":[0,0,438]}\n')
    (store / "journal.json").write_text(
        '{"version": 2, "run_id": null, "state": "none", "steps": {}, "made": [], "gen": "g",'
        ' "changes": [{"step": "persist", "record": {"type": "persist.perms", "v": 1,'
        ' "path": "/etc/shadow", "old": [0, 0, 438]}}]}\n')
    for name in ("persist.jsonl", "journal.json"):
        os.chown(store / name, 1000, 1000)
    if how == "user-dir":
        os.chown(store, 1000, 1000)


@pytest.mark.root
@pytest.mark.parametrize("how", ["user-dir", "user-file"])
def test_a_forged_store_is_refused(scratch: Path, how: str) -> None:
    root = scratch / "root"
    (root / "etc").mkdir(parents=True)
    _forge(root, how)
    proc = _cli("undo", "--root", str(root))
    _, err = proc.communicate()
    assert stat.S_IMODE(os.stat(root / "etc/shadow").st_mode) == 0o640, "undo followed a forged record"
    assert proc.returncode == 73, err
    assert "refusing to trust it" in err
    assert "owned by uid 1000" in err


@pytest.mark.root
def test_a_store_file_hard_linked_elsewhere_is_never_truncated(scratch: Path) -> None:
    """journal.log hard-linked to /etc/shadow (planted while the directory was open to others):
    an apply refuses the store instead of truncating shadow through the link."""
    root = scratch / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    shadow = root / "etc/shadow"
    shadow.write_text("root:!:1::::::\n")
    os.chmod(shadow, 0o600)
    store = root / "run/freshroot"
    store.mkdir(parents=True, mode=0o700)
    os.link(shadow, store / "journal.log")
    decl = scratch / "decl.toml"
    decl.write_text('[activation.hello]\ntext = "true"\n')
    proc = _cli("apply", "--root", str(root), "--config", str(decl))
    _, err = proc.communicate()
    assert shadow.read_text() == "root:!:1::::::\n", "apply truncated a file hard-linked into its store"
    assert proc.returncode == 73, err
    assert "2 hard links" in err


@pytest.mark.root
def test_a_user_cannot_read_the_store(scratch: Path) -> None:
    root = scratch / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    decl = scratch / "decl.toml"
    decl.write_text('[activation.hello]\ntext = "true"\n')
    proc = _cli("apply", "--root", str(root), "--config", str(decl))
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    store = root / "run/freshroot"
    assert (os.stat(store).st_uid, stat.S_IMODE(os.stat(store).st_mode)) == (0, 0o700)
    for name in ("journal.json", "journal.log", "lock"):
        assert not stat.S_IMODE(os.stat(store / name).st_mode) & 0o077, name

    def attacker() -> None:
        os.chdir(store)  # as if /run were open to them: the directory's own mode is what stops them
        os.setgroups([])
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)
        for name in ("journal.json", "journal.log", "lock"):
            with pytest.raises(PermissionError):
                os.open(name, os.O_RDONLY)

    in_child(attacker)
