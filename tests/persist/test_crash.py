"""kill -9 at random points of apply and of migrate: a rerun converges, storage loses nothing."""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from freshroot.fs import bindmount, mount
from freshroot.persist.undo import undo
from tests.fs.helpers import in_child
from tests.persist.helpers import Applied, make_root, setup

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]

RUNS = 56
KILLED: list[int] = []
DECL = """
[persist."/persist"]
directories = [{dirs}, {{ path = "/var/lib/db", migrate = "move" }}]
files = [{files}, {{ path = "/etc/state.bin", how = "bind", migrate = "move" }}]
"""


def _declaration() -> str:
    dirs = ", ".join(f'"/var/lib/app{i}"' for i in range(30))
    files = ", ".join(f'"/etc/conf{i}"' for i in range(8))
    return DECL.format(dirs=dirs, files=files)


def _populate(root: Path, rng: random.Random) -> dict[str, str]:
    """State on the fresh root that must end up in storage: path -> sha256."""
    want: dict[str, str] = {}
    db = root / "var/lib/db"
    (db / "tables").mkdir(parents=True)
    for i in range(6):
        data = rng.randbytes(rng.randrange(1, 48 << 10))
        (db / "tables" / f"t{i}").write_bytes(data)
        want[f"var/lib/db/tables/t{i}"] = hashlib.sha256(data).hexdigest()
    data = rng.randbytes(100_000)
    (root / "etc/state.bin").write_bytes(data)
    want["etc/state.bin"] = hashlib.sha256(data).hexdigest()
    for i in range(0, 30, 7):  # what storage held already must come through untouched
        kept = root / f"persist/var/lib/app{i}/kept"
        kept.parent.mkdir(parents=True)
        data = rng.randbytes(4096)
        kept.write_bytes(data)
        want[f"var/lib/app{i}/kept"] = hashlib.sha256(data).hexdigest()
    return want


def _check(a: Applied, want: dict[str, str]) -> None:
    outcome = a.apply()
    assert outcome.ok, outcome.failed
    assert a.plan() == [], "the rerun did not converge"
    for rel, digest in want.items():
        for base in ("persist/", ""):  # in storage, and seen through the mount
            got = hashlib.sha256((a.root / base / rel).read_bytes()).hexdigest()
            assert got == digest, f"{base}{rel} lost or corrupted"
    leftovers = [n for _, _, names in os.walk(a.root / "persist") for n in names if n.startswith(".freshroot")]
    assert not leftovers


def _migrate_cli(root: Path) -> None:
    from freshroot.persist import cli

    args = argparse.Namespace(root=str(root), config=[str(root / "decl.toml")], dry_run=False, json=False,
                              copy=False, paths=["/var/lib/db", "/etc/state.bin"])
    cli.migrate(args)


def _run(scratch: Path, n: int, rng: random.Random, delay: float, via_migrate: bool) -> float:
    base = scratch / f"run{n}"
    base.mkdir()
    root = make_root(base)
    want = _populate(root, rng)
    text = _declaration()
    (root / "decl.toml").write_text(text)
    a = setup(root, text)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if via_migrate:
                _migrate_cli(root)
            a.apply()
        except BaseException:  # noqa: BLE001 - the child only reports by exit status
            code = 1
        os._exit(code)
    if delay >= 0:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    took = time.monotonic() - start
    if os.WIFSIGNALED(status):
        KILLED.append(n)
    _check(a, want)
    undo(a.ctx())
    os.close(a.fd)
    shutil.rmtree(base)
    return took


def test_kill_apply_and_migrate_at_random_points(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        # A tmpfs, as a wiped root is: kill -9 tests process death, not power loss, and
        # the disk's fsync latency would only slow the test down.
        mount.mount("tmpfs", str(scratch), "tmpfs")
        rng = random.Random(int(os.environ.get("FRESHROOT_SEED", "1234")))  # noqa: S311 - test data, not crypto
        full = max(_run(scratch, -1, rng, -1, via_migrate=False), _run(scratch, -2, rng, -1, via_migrate=True))
        for n in range(RUNS):
            _run(scratch, n, rng, rng.uniform(0, full * 0.8), via_migrate=n % 2 == 1)
        # The kills must land inside the runs, not after them.
        assert len(KILLED) >= RUNS // 3, KILLED
    in_child(body)
