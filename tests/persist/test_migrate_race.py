"""migrate against programs that keep writing, and against a second migrate (issue 14, #2, #13).

A writer, an unprivileged process pinned to another CPU, creates a new file every ~0.5 ms in
the directory being migrated (and keeps replacing one file by rename) while ``freshroot
migrate`` moves it: every file it wrote must afterwards be in storage or on the root, with
its bytes. Two migrates of one path at once: one waits for or refuses the other, no data is
lost. And ``migrate --copy`` then ``apply`` binds over the root's identical copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import random
import select
import shutil
import time
from pathlib import Path

import pytest

from freshroot.cli import main
from freshroot.fs import bindmount, mount
from freshroot.fs.ops import open_root
from freshroot.plan.lock import ApplyLock
from tests.fs.helpers import USER, in_child
from tests.persist.helpers import is_mounted, make_root

pytestmark = [pytest.mark.root, pytest.mark.netns]

DECL = """[persist."/persist"]
directories = ["/var/lib/app"]
files = [{ path = "/etc/app.state", how = "bind" }]
"""
ROUNDS = 4
INITIAL = 1500  # files on the root before the migration: it takes long enough to race with
PERIOD = 0.0005  # the writer's pace: one new file every 0.5 ms
WRITER_LIMIT = 30.0  # seconds: a writer never outlives a stuck migration by much
WRITER_FILES = 20000  # nor fills the scratch file system when the machine is slow


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cpus() -> tuple[set[int], set[int]]:
    """(the migrate's CPU, the writer's CPU): different ones where there are two."""
    cpus = sorted(os.sched_getaffinity(0))
    return {cpus[0]}, {cpus[-1]}


def _writer(app: Path, stop: int, report: int, cpu: set[int], seed: int) -> None:
    """In a child, as USER: write new files (and replace ``state`` by rename) until ``stop``
    is readable; send {name: sha256} of every write that completed, and the last state."""
    os.sched_setaffinity(0, cpu)
    # The directory is opened before the privileges go: the scratch path above it is 0700.
    dfd = os.open(app, os.O_RDONLY | os.O_DIRECTORY)
    os.setgroups([])
    os.setresgid(USER, USER, USER)
    os.setresuid(USER, USER, USER)
    rng = random.Random(seed)  # noqa: S311 - test data
    written: dict[str, str] = {}
    last_state = b""
    i = 0
    next_at = time.monotonic()
    deadline = time.monotonic() + WRITER_LIMIT
    while not select.select([stop], [], [], 0)[0] and time.monotonic() < deadline and i < WRITER_FILES:
        data = rng.randbytes(rng.randrange(1, 3000))
        name = f"new{i:06d}" if i % 10 else f"d{i:06d}/inner"
        try:
            if "/" in name:
                os.mkdir(name.split("/", maxsplit=1)[0], dir_fd=dfd)
            _write(dfd, name, data, os.O_EXCL)
            written[name] = _sha(data)
        except OSError:
            pass  # a directory the migration removed just after we made it: nothing was written
        state = str(i).encode()
        try:
            _write(dfd, "state.tmp", state, os.O_TRUNC)
            os.rename("state.tmp", "state", src_dir_fd=dfd, dst_dir_fd=dfd)
            last_state = state
        except OSError:
            pass  # state.tmp moved away before our rename: that write did not complete
        i += 1
        next_at += PERIOD
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    os.write(report, pickle.dumps((written, last_state)))


def _write(dfd: int, name: str, data: bytes, flag: int) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | flag, 0o644, dir_fd=dfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _one_round(base: Path, n: int) -> tuple[int, int]:
    """One migration raced by a writer; returns (files the writer wrote, migrate's exit code)."""
    root = make_root(base / f"round{n}")
    conf = root / "decl.toml"
    conf.write_text(DECL)
    app = root / "var/lib/app"
    app.mkdir(parents=True)
    os.chown(app, USER, USER)
    rng = random.Random(n)  # noqa: S311 - test data
    before: dict[str, str] = {}
    for i in range(INITIAL):
        data = rng.randbytes(4096)
        (app / f"old{i:05d}").write_bytes(data)
        before[f"old{i:05d}"] = _sha(data)
    mine, theirs = _cpus()
    stop_r, stop_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(stop_w)
            os.close(rep_r)
            _writer(app, stop_r, rep_w, theirs, n)
        except BaseException:  # noqa: BLE001 - the child reports by exit status
            code = 1
        os._exit(code)
    os.close(stop_r)
    os.close(rep_w)
    try:
        deadline = time.monotonic() + 10
        while len(os.listdir(app)) < INITIAL + 50 and time.monotonic() < deadline:
            time.sleep(0.005)  # the writer is under way before the migration starts
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, mine)
        try:
            code, _, err = _run("migrate", "--root", str(root), "--config", str(conf), "/var/lib/app")
        finally:
            os.sched_setaffinity(0, saved)
        time.sleep(0.02)  # and still running after it
    finally:
        os.close(stop_w)
        report = _read_all(rep_r)
        os.close(rep_r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the writer failed"
    written, last_state = pickle.loads(report)  # noqa: S301 - our own child's data
    assert len(written) > 50, "the writer hardly ran: the race was not tested"
    # Success, or a failure that says what stays on the root: never a crash.
    assert code in (0, 73), err
    assert code == 0 or "stay on the root" in err, err
    store = root / "persist/var/lib/app"
    lost = []
    for name, digest in {**before, **written}.items():
        found = [p for p in (store / name, app / name) if p.is_file() and _sha(p.read_bytes()) == digest]
        if not found:
            lost.append(name)
    assert not lost, f"round {n}: {len(lost)} of {len(before) + len(written)} files lost: {lost[:10]}"
    states = {p.read_bytes() for p in (store / "state", app / "state") if p.is_file()}
    assert last_state in states, f"the writer's last state {last_state!r} is lost (found {states})"
    assert not [p for p in store.iterdir() if p.name.startswith(".freshroot")], "a temporary was left in storage"
    shutil.rmtree(root)
    return len(written), code


def test_migrate_keeps_every_file_a_writer_writes_meanwhile(scratch: Path) -> None:
    """Fails on the old migrate, which emptied the root's directory after the copy: the files
    written during the copy ended up nowhere."""
    def body() -> None:
        bindmount.unshare_mounts()
        # A tmpfs (as a wiped root is), private to this namespace: the writer's files never
        # reach the disk, and die with the namespace.
        mount.mount("tmpfs", str(scratch), "tmpfs", data="size=1g")
        total = 0
        for n in range(ROUNDS):
            wrote, _ = _one_round(scratch, n)
            total += wrote
        assert total > ROUNDS * 100
    in_child(body)


def _concurrent(root: Path, conf: Path) -> list[tuple[int, str]]:
    """Two migrates of one path started together; their (exit code, stderr)."""
    go_r, go_w = os.pipe()
    pids = []
    outs = []
    for _ in range(2):
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(go_w)
                os.close(out_r)
                os.read(go_r, 1)
                code, _, err = _run("migrate", "--root", str(root), "--config", str(conf), "/var/lib/app")
                os.write(out_w, err.encode())
            finally:
                os._exit(code)
        os.close(out_w)
        pids.append(pid)
        outs.append(out_r)
    os.close(go_r)
    os.write(go_w, b"xx")
    os.close(go_w)
    results = []
    for pid, out in zip(pids, outs, strict=True):
        err = _read_all(out).decode()
        os.close(out)
        _, status = os.waitpid(pid, 0)
        results.append((os.waitstatus_to_exitcode(status), err))
    return results


def test_two_migrates_of_one_path_one_refuses_nothing_lost(scratch: Path) -> None:
    """Fails on the old migrate: no lock, one shared temporary name, and the two runs trip
    over each other's copy."""
    def body() -> None:
        bindmount.unshare_mounts()
        refused = 0
        for n in range(6):
            root = make_root(scratch / f"run{n}")
            conf = root / "decl.toml"
            conf.write_text(DECL)
            app = root / "var/lib/app"
            rng = random.Random(n)  # noqa: S311 - test data
            want = {}
            for i in range(800):
                data = rng.randbytes(2048)
                (app / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
                (app / f"d{i % 7}/f{i}").write_bytes(data)
                want[f"d{i % 7}/f{i}"] = _sha(data)
            results = _concurrent(root, conf)
            for code, err in results:
                assert code == 0 or (code == 1 and "another freshroot" in err), results
            refused += sum(code == 1 for code, _ in results)
            assert any(code == 0 for code, _ in results), results
            store = root / "persist/var/lib/app"
            for rel, digest in want.items():
                assert _sha((store / rel).read_bytes()) == digest, f"{rel} lost"
            assert not list(app.iterdir()), "the move left data on the root"
            assert not [p for p in store.parent.iterdir() if p.name.startswith(".freshroot")]
        assert refused > 0, "the two migrates never overlapped: the lock was not tested"
    in_child(body)


def test_migrate_refuses_while_an_apply_holds_the_lock(scratch: Path) -> None:
    """Fails on the old migrate, which took no lock and moved the data under a running apply."""
    root = make_root(scratch)
    conf = root / "decl.toml"
    conf.write_text(DECL)
    (root / "var/lib/app").mkdir(parents=True)
    (root / "var/lib/app/data").write_text("precious")
    fd = open_root(str(root))
    try:
        with ApplyLock(fd, str(root)):
            code, _, err = _run("migrate", "--root", str(root), "--config", str(conf), "/var/lib/app")
    finally:
        os.close(fd)
    assert code == 1, err
    assert "another freshroot" in err
    assert (root / "var/lib/app/data").read_text() == "precious"
    assert not (root / "persist/var").exists()


def test_migrate_copy_then_apply_binds_over_the_identical_copy(scratch: Path) -> None:
    """``migrate --copy`` leaves the root's copy, which its help says the mount hides: apply
    must then bind, not refuse "both hold data" (it refused on the old code). Once the two
    differ, apply refuses again, naming where."""
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        conf = root / "decl.toml"
        conf.write_text(DECL)
        (root / "var/lib/app/sub").mkdir(parents=True)
        (root / "var/lib/app/sub/rows").write_text("precious")
        (root / "etc/app.state").write_text("state")
        common = ("--root", str(root), "--config", str(conf))
        code, _, err = _run("migrate", *common, "--copy", "/var/lib/app", "/etc/app.state")
        assert code == 0, err
        assert (root / "var/lib/app/sub/rows").read_text() == "precious"  # the copy stays
        assert (root / "persist/var/lib/app/sub/rows").read_text() == "precious"
        code, out, err = _run("apply", *common)
        assert code == 0, out + err
        assert is_mounted(root / "var/lib/app")
        assert is_mounted(root / "etc/app.state")
        code, out, err = _run("undo", "--root", str(root))
        assert code == 0, out + err
        assert not is_mounted(root / "var/lib/app")
        # Storage moves on while the root's copy stays behind: no longer the same data.
        (root / "persist/var/lib/app/sub/rows").write_text("newer")
        code, out, err = _run("apply", *common)
        assert code != 0
        assert "/var/lib/app/sub/rows" in out + err
        assert not is_mounted(root / "var/lib/app")
        assert (root / "var/lib/app/sub/rows").read_text() == "precious"
    in_child(body)


def test_a_file_open_for_writing_stays_on_the_root(scratch: Path) -> None:
    """A program holding a file open for writing (a database, a log) could write to it after it
    was copied: the read lease is refused, so the file stays on the root and migrate says so
    (exit 73); everything else is moved. The old migrate removed it anyway."""
    root = make_root(scratch)
    conf = root / "decl.toml"
    conf.write_text(DECL)
    app = root / "var/lib/app"
    (app / "sub").mkdir(parents=True)
    (app / "sub/rows").write_text("rows")
    (app / "journal").write_text("begin\n")
    held = os.open(app / "journal", os.O_WRONLY | os.O_APPEND)
    try:
        code, _, err = _run("migrate", "--root", str(root), "--config", str(conf), "/var/lib/app")
        os.write(held, b"commit\n")  # the program goes on writing: nothing is lost
    finally:
        os.close(held)
    assert code == 73, err
    assert "/var/lib/app/journal: open for writing" in err
    assert (app / "journal").read_text() == "begin\ncommit\n"
    assert not (app / "sub").exists()
    assert (root / "persist/var/lib/app/sub/rows").read_text() == "rows"
    assert not (root / "persist/var/lib/app/journal").exists()  # no stale copy left in storage
    # Once the program is stopped, migrating again finishes the move.
    code, _, err = _run("migrate", "--root", str(root), "--config", str(conf), "/var/lib/app")
    assert code == 0, err
    assert (root / "persist/var/lib/app/journal").read_text() == "begin\ncommit\n"
    assert not list(app.iterdir())
