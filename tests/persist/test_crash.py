"""kill -9 at random points of apply and of migrate: a rerun converges, storage loses nothing.

At least KILLS runs of each are killed mid-work (a change begun, the journal says, and more
to do, the plan says); kills that land before the work or after it are retried, within
ATTEMPTS runs."""

from __future__ import annotations

import argparse
import bisect
import hashlib
import os
import random
import shutil
import signal
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from freshroot.fs import bindmount, mount
from freshroot.persist import handlers
from freshroot.plan import journal
from freshroot.plan.records import Record
from freshroot.plan.undo import undo
from tests.fs.helpers import in_child
from tests.persist.helpers import Applied, make_root, setup

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]

KILLS = 25  # runs killed mid-work, of apply and of migrate each: 50 in all
ATTEMPTS = 4 * 2 * KILLS  # the bound: a kill that lands before the work or after it is retried
RECALIBRATE = 20  # attempts between unkilled runs that measure the work's timeline again
FRAME = struct.Struct("=cd")  # from the child: b"r" (a journal record) or b"e" (done), monotonic time
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
    args = argparse.Namespace(root=str(root), config=[str(root / "decl.toml")], dry_run=False, json=False,
                              copy=False, paths=["/var/lib/db", "/etc/state.bin"])
    handlers.migrate(args)


def _journal_lines(root: Path) -> int:
    """The changes the state store holds (a change is recorded before it is made)."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        data = journal.read(fd)
    finally:
        os.close(fd)
    return len(data["changes"]) if data is not None else 0


def _stamp_records(w: int) -> None:
    """In the child: write the time of each journal record to ``w`` (each change begins
    with one; before the first the run only reads and plans)."""
    real = journal.Journal.change

    def stamped(self: journal.Journal, step: str, record: Record) -> None:
        os.write(w, FRAME.pack(b"r", time.monotonic()))
        real(self, step, record)

    journal.Journal.change = stamped  # type: ignore[method-assign]


@dataclass
class Run:
    records: list[float]  # seconds from the fork to each journal record the child came to
    done: float | None  # seconds from the fork to the end of the work, if it came to it
    mid_work: bool  # killed with some change begun (journalled) and some still to do (planned)


def _run(scratch: Path, n: int, rng: random.Random, kill_at: tuple[int, float] | None, via_migrate: bool) -> Run:
    """One run, killed -9 ``kill_at`` = (k, d): d seconds after its k-th journal record (never
    with None), then the rerun checked: it converges and storage holds every byte."""
    base = scratch / f"run{n}"
    base.mkdir()
    root = make_root(base)
    want = _populate(root, rng)
    text = _declaration()
    (root / "decl.toml").write_text(text)
    a = setup(root, text)
    r, w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            _stamp_records(w)
            if via_migrate:
                _migrate_cli(root)
            a.apply()
            os.write(w, FRAME.pack(b"e", time.monotonic()))
        except BaseException:  # noqa: BLE001 - the child only reports by exit status
            code = 1
        os._exit(code)
    os.close(w)
    records: list[float] = []
    done = None
    buf = b""
    while chunk := os.read(r, 4096):
        buf += chunk
        while len(buf) >= FRAME.size:
            kind, t = FRAME.unpack(buf[:FRAME.size])
            buf = buf[FRAME.size:]
            if kind == b"e":
                done = t - start
            else:
                records.append(t - start)
                if kill_at is not None and len(records) == kill_at[0]:
                    time.sleep(kill_at[1])
                    os.kill(pid, signal.SIGKILL)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status)
    assert killed or os.WEXITSTATUS(status) == 0, "an unkilled run failed"
    run = Run(records, None if killed else done, killed and _journal_lines(root) > 0 and a.plan() != [])
    _check(a, want)
    undo(a.ctx())
    os.close(a.fd)
    shutil.rmtree(base)
    return run


def test_kill_apply_and_migrate_at_random_points(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        # A tmpfs, as a wiped root is: kill -9 tests process death, not power loss, and
        # the disk's fsync latency would only slow the test down.
        mount.mount("tmpfs", str(scratch), "tmpfs")
        rng = random.Random(int(os.environ.get("FRESHROOT_SEED", "1234")))  # noqa: S311 - test data, not crypto
        # Unkilled runs of each kind, measured here and now (again every RECALIBRATE attempts,
        # as the machine's load changes), say when the work begins (the first journal record)
        # and ends. Each kill aims at a point drawn evenly from that time; it is timed from
        # the journal record before that point, not from the fork, so the noise of starting
        # a process (and of a loaded machine) does not throw it before or after the work.
        timelines: dict[bool, list[Run]] = {False: [], True: []}

        def calibrate(n: int) -> None:
            for m in (False, True):
                run = _run(scratch, n - m, rng, None, via_migrate=m)
                assert run.records
                assert run.done is not None
                timelines[m].append(run)

        calibrate(-1)
        killed = {False: 0, True: 0}
        attempts = 0
        while min(killed.values()) < KILLS and attempts < ATTEMPTS:
            if killed[False] >= KILLS:
                m = True
            elif killed[True] >= KILLS:
                m = False
            else:
                m = attempts % 2 == 1
            cal = timelines[m][-1]
            assert cal.done is not None
            point = rng.uniform(cal.records[0], cal.done)
            k = bisect.bisect_right(cal.records, point)  # the records before the point, >= 1
            run = _run(scratch, attempts, rng, (k, point - cal.records[k - 1]), via_migrate=m)
            attempts += 1
            killed[m] += run.mid_work
            if attempts % RECALIBRATE == 0:
                calibrate(-1 - 2 * attempts)
        # The kills must land inside the work, not before or after it.
        assert min(killed.values()) >= KILLS, (killed, attempts)
    in_child(body)
