"""A big clean shared out to worker processes (freshroot.tmpfiles.cleanworkers).

test_clean.py runs every differential clean case with workers as well; these test the pool
itself, that the walk really hands directories to it, and the one dependency between sibling
directories (hard links and ctime).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from freshroot.fs.ops import open_root
from freshroot.tmpfiles import clean, cleanworkers
from freshroot.tmpfiles.load import LoadOptions, load
from freshroot.tmpfiles.messages import Level, stderr_reporter
from tests.tmpfiles.cleantree import Node, build, snapshot
from tests.tmpfiles.test_clean import BASIC, OLD, run_oracle

LINKED = 1500  # inodes with a link in each of two directories: enough for the workers to meet


def _mark(directory: Path, index: int) -> None:
    """Record that task ``index`` ran, and in which process (O_EXCL: a second run fails)."""
    fd = os.open(directory / str(index), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_task_runs_once_and_results_are_ored(tmp_path: Path) -> None:
    errors: list[str] = []

    def work(i: int) -> int:
        _mark(tmp_path, i)
        return 1 << (i % 3)

    result = cleanworkers.run_in_workers(3, 50, work, errors.append)
    assert result == 0b111
    assert errors == []
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == list(range(50))
    pids = {int(p.read_text()) for p in tmp_path.iterdir()}
    assert os.getpid() not in pids  # the work ran in workers, never in the caller
    assert not any(_alive(pid) for pid in pids)  # and every worker was reaped


def _error_log(path: Path) -> Callable[[str], None]:
    """An on_error that works from the workers too (they cannot append to the caller's list)."""
    def log(message: str) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(message + "\n")
    return log


def test_a_worker_that_raises_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    marks, log = tmp_path / "marks", tmp_path / "errors"
    marks.mkdir()

    def work(i: int) -> int:
        if i == 3:
            raise ValueError("broken task")
        _mark(marks, i)
        return 0

    result = cleanworkers.run_in_workers(2, 20, work, _error_log(log))
    assert result & cleanworkers.CRASHED
    assert log.read_text() == "A clean worker process failed: ValueError: broken task\n"
    assert sorted(int(p.name) for p in marks.iterdir()) == [i for i in range(20) if i != 3]


def test_a_worker_killed_by_a_signal_is_reported(tmp_path: Path) -> None:
    marks, log = tmp_path / "marks", tmp_path / "errors"
    marks.mkdir()

    def work(i: int) -> int:
        if i == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        _mark(marks, i)
        return 0

    result = cleanworkers.run_in_workers(2, 10, work, _error_log(log))
    assert result & cleanworkers.CRASHED
    assert log.read_text() == f"A clean worker process was killed by signal {int(signal.SIGKILL)}.\n"
    assert sorted(int(p.name) for p in marks.iterdir()) == list(range(1, 10))


def test_when_no_worker_can_start_the_walk_does_it_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    with monkeypatch.context() as m:
        m.setattr(os, "fork", no_fork)
        with pytest.raises(OSError, match="temporarily unavailable"):
            cleanworkers.run_in_workers(2, 3, lambda _i: 0, lambda _m: None)
        conf = tmp_path / "c.conf"
        conf.write_text("d /t - - - amAM:1h\n")
        build(tmp_path / "r", BASIC)
        assert _sweep(tmp_path / "r", conf, workers=3, parallel_after=1)
    build(tmp_path / "s", BASIC)
    assert _sweep(tmp_path / "s", conf, workers=1)
    assert snapshot(tmp_path / "r") == snapshot(tmp_path / "s")


def test_fewer_workers_than_asked_take_every_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fork, forks = os.fork, list[int]()

    def second_fails() -> int:
        if forks:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", second_fails)
    def work(i: int) -> int:
        _mark(tmp_path, i)
        return 0

    assert cleanworkers.run_in_workers(3, 12, work, lambda _m: None) == 0
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == list(range(12))
    assert len({p.read_text() for p in tmp_path.iterdir()}) == 1  # all in the one worker


def test_when_every_worker_dies_early_the_call_returns_crashed(tmp_path: Path) -> None:
    """More tasks than the pipe holds, and no worker left to read them: no hang, no error."""
    log = tmp_path / "errors"

    def work(_i: int) -> int:
        raise RuntimeError("gone")

    result = cleanworkers.run_in_workers(2, 100_000, work, _error_log(log))
    assert result & cleanworkers.CRASHED
    assert log.read_text().splitlines() == ["A clean worker process failed: RuntimeError: gone"] * 2


def test_default_workers_from_the_environment() -> None:
    assert cleanworkers.default_workers({"FRESHROOT_CLEAN_WORKERS": "1"}) == 1
    assert cleanworkers.default_workers({"FRESHROOT_CLEAN_WORKERS": "6"}) == 6
    cpus = len(os.sched_getaffinity(0))
    assert cleanworkers.default_workers({}) == min(cpus, cleanworkers.MAX_DEFAULT)
    for bad in ("", "0", "-2", "many"):
        warnings: list[str] = []
        assert cleanworkers.default_workers({"FRESHROOT_CLEAN_WORKERS": bad}, warnings.append) == min(
            cpus, cleanworkers.MAX_DEFAULT)
        assert warnings == [f"Cannot parse value of $FRESHROOT_CLEAN_WORKERS ({bad!r}), ignoring."]


def _sweep(root: Path, conf: Path, **kwargs: object) -> bool:
    config = load(LoadOptions(configs=(str(conf),), root=str(root)), stderr_reporter(Level.ERR))
    fd = open_root(str(root))
    try:
        return clean.sweep(config, fd, clean=True, root=str(root), **kwargs)  # type: ignore[arg-type]
    finally:
        os.close(fd)


def test_the_walk_hands_its_directories_to_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    real = cleanworkers.run_in_workers

    def recording(count: int, tasks: int, work: Callable[[int], int], on_error: Callable[[str], None]) -> int:
        calls.append((count, tasks))
        return real(count, tasks, work, on_error)

    monkeypatch.setattr(cleanworkers, "run_in_workers", recording)
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    build(tmp_path / "a", BASIC)
    build(tmp_path / "b", BASIC)
    assert _sweep(tmp_path / "a", conf, workers=3, parallel_after=1)
    assert calls == [(3, 4)]  # t/sub, t/deep, t/emptyold, t/emptynew
    # Below the threshold, and in a dry run, nothing is shared out.
    assert _sweep(tmp_path / "b", conf, workers=3, parallel_after=10_000)
    assert _sweep(tmp_path / "b", conf, workers=3, parallel_after=1, dry_run=True)
    assert calls == [(3, 4)]


def test_a_lone_directory_is_entered_and_shares_out_what_it_holds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/t holds one directory, which holds five: those five go to the workers."""
    calls: list[int] = []
    real = cleanworkers.run_in_workers

    def recording(count: int, tasks: int, work: Callable[[int], int], on_error: Callable[[str], None]) -> int:
        calls.append(tasks)
        return real(count, tasks, work, on_error)

    monkeypatch.setattr(cleanworkers, "run_in_workers", recording)
    nodes = [Node(f"t/only/d{d}/old{f}", age=OLD) for d in range(5) for f in range(3)]
    nodes += [Node(f"t/only/d{d}", "d", age=OLD) for d in range(5)] + [Node("t/only", "d", age=OLD)]
    build(tmp_path / "r", nodes)
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    assert _sweep(tmp_path / "r", conf, workers=2, parallel_after=1)
    assert calls == [5]
    assert sorted(snapshot(tmp_path / "r")) == ["t"]  # everything old went, the emptied directories too


@pytest.mark.oracle
def test_hard_links_in_sibling_directories_keep_one_as_systemd(tmp_path: Path, oracles: Path) -> None:
    """Removing one link of an old file renews its ctime, so with 'c' in the age-by systemd's
    walk keeps the link it meets later. Workers cleaning the two directories at once must not
    both see the old ctime: each inode keeps exactly one link, as with systemd."""
    conf = tmp_path / "c.conf"
    # Every timestamp counts (the default age-by). The ctime cannot be set: the files are made,
    # then aged by waiting longer than the age; a renewed ctime is then clearly young.
    conf.write_text("d /t - - - 1s\n")
    survivors = {}
    sides = ("theirs", "ours", "ours-sequential")
    for side in sides:
        root = tmp_path / side
        for d in range(8):
            (root / "t" / f"d{d}").mkdir(parents=True)
        for i in range(LINKED):
            first = root / "t" / f"d{i % 8}" / f"f{i}"
            first.write_text(str(i))
            os.link(first, root / "t" / f"d{(i + 3) % 8}" / f"g{i}")
    time.sleep(1.5)
    for side in sides:
        root = tmp_path / side
        if side == "theirs":
            run_oracle(oracles / "systemd-tmpfiles-new", root, conf)
        else:
            assert _sweep(root, conf, workers=1 if side.endswith("sequential") else 4, parallel_after=1)
        inodes: dict[int, int] = {}
        for p in (root / "t").rglob("*"):
            if p.is_file():
                inodes[p.stat().st_ino] = inodes.get(p.stat().st_ino, 0) + 1
        survivors[side] = sorted(inodes.values())
    assert survivors["ours"] == survivors["ours-sequential"] == survivors["theirs"] == [1] * LINKED


def _dir_times(root: Path) -> dict[str, int]:
    """relative path -> mtime of every directory left below t (the walk restores them; the
    atime is left out: reading the tree to compare it moves it)."""
    out = {}
    for dirpath, _, _, dirfd in os.fwalk(root / "t"):
        out[os.path.relpath(dirpath, root)] = os.fstat(dirfd).st_mtime_ns
    return out


def test_the_cleaned_tree_is_the_same_with_and_without_workers(tmp_path: Path) -> None:
    """A wider tree than BASIC: nested directories of old and new files, old empty ones; the
    same entries survive, and the directories left keep the same times."""
    nodes = []
    for d in range(6):
        for s in range(3):
            nodes += [Node(f"t/d{d}/s{s}/old{f}", age=OLD) for f in range(5)]
            nodes += [Node(f"t/d{d}/s{s}/new{f}", age=60) for f in range(2 if s else 0)]
            nodes.append(Node(f"t/d{d}/s{s}", "d", age=OLD))
        nodes.append(Node(f"t/d{d}", "d", age=OLD if d % 2 else 60))
    nodes.append(Node("t", "d", age=OLD))
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    now = time.time()  # the same times in both trees
    for side, workers in (("one", 1), ("many", 3)):
        build(tmp_path / side, nodes, now=now)
        assert _sweep(tmp_path / side, conf, workers=workers, parallel_after=1)
    assert snapshot(tmp_path / "many") == snapshot(tmp_path / "one")
    assert "t/d0/s1/new0" in snapshot(tmp_path / "one")  # young files stay
    assert "t/d1/s0" not in snapshot(tmp_path / "one")  # old directories emptied go
    assert _dir_times(tmp_path / "many") == _dir_times(tmp_path / "one")


@pytest.mark.oracle
def test_a_failure_in_a_worker_fails_the_run_as_in_systemd(tmp_path: Path, oracles: Path) -> None:
    """An old file that cannot be removed (immutable, chattr +i) in a directory a worker
    cleans: the message comes once, the run fails (exit 73 from the command line), the other
    directories are still cleaned; as systemd does it, and as the one-process walk does."""
    from freshroot.fs import attrs

    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    nodes = [Node(f"t/d{d}/old{f}", age=OLD) for d in range(4) for f in range(3)]
    stuck = "t/d2/old1"
    results = {}
    try:
        for side in ("theirs", "one", "many"):
            root = tmp_path / side
            build(root, nodes)
            fd = os.open(root / stuck, os.O_RDONLY)
            try:
                try:
                    attrs.change_flags(fd, attrs.IMMUTABLE, attrs.IMMUTABLE)
                except OSError as e:
                    pytest.skip(f"this file system has no immutable flag: {e}")
            finally:
                os.close(fd)
            if side == "theirs":
                status = run_oracle(oracles / "systemd-tmpfiles-new", root, conf)
                problems = None
            else:
                log = tmp_path / f"{side}.log"
                ok = _sweep(root, conf, workers=1 if side == "one" else 3, parallel_after=1, log=_error_log(log))
                status = 0 if ok else 73
                problems = log.read_text().splitlines()
            results[side] = (status, problems, sorted(snapshot(root)))
    finally:
        for side in ("theirs", "one", "many"):
            path = tmp_path / side / stuck
            if path.exists():
                fd = os.open(path, os.O_RDONLY)
                attrs.change_flags(fd, 0, attrs.IMMUTABLE)  # let pytest remove the tree
                os.close(fd)
    assert results["many"][0] == results["one"][0] == results["theirs"][0] == 73
    assert results["many"][2] == results["one"][2] == results["theirs"][2]
    assert stuck in results["many"][2]
    assert "t/d1/old0" not in results["many"][2]  # the other directories were cleaned
    shown = f"{tmp_path / 'many'}/{stuck}"
    assert results["many"][1] == [f'Failed to remove "{shown}", ignoring: Operation not permitted']
    assert results["one"][1] == [f'Failed to remove "{tmp_path / "one"}/{stuck}", ignoring: Operation not permitted']


def test_a_bad_worker_count_is_a_warning_from_the_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "t").mkdir()
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - 1h\n")
    tool = str(Path(sys.executable).with_name("freshroot-tmpfiles"))
    proc = subprocess.run([tool, f"--root={tmp_path}", "--clean", str(conf)], capture_output=True, text=True,
                          env={**os.environ, "FRESHROOT_CLEAN_WORKERS": "many"}, check=False)
    assert proc.returncode == 0
    assert proc.stderr == "Cannot parse value of $FRESHROOT_CLEAN_WORKERS ('many'), ignoring.\n"
