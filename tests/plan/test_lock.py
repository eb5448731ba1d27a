"""The apply lock against an unprivileged user (issue 14 #3): only root can open it, a lock file
left open to others is replaced, and the holder is named only while it is still that process."""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from freshroot.fs.ops import open_root
from freshroot.plan.lock import ApplyLock, LockHeldError

ATTACKER = 1000


def _attacker_holding(lock_dir: Path) -> tuple[int, int]:
    """Fork a process that enters ``lock_dir`` (as root, standing for the world-traversable
    /run of a real machine), becomes uid 1000, opens ``lock`` read-only and flocks it. Returns
    (pid, 1 if it holds the lock else 0) once it has tried."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = b"0"
        try:
            os.chdir(lock_dir)
            os.setgroups([])
            os.setresgid(ATTACKER, ATTACKER, ATTACKER)
            os.setresuid(ATTACKER, ATTACKER, ATTACKER)
            fd = os.open("lock", os.O_RDONLY | os.O_NOFOLLOW)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            code = b"1"
        except OSError:
            pass
        os.write(w, code)
        while True:
            time.sleep(60)  # keep holding whatever it got until killed
    os.close(w)
    got = os.read(r, 1)
    os.close(r)
    return pid, int(got == b"1")


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


@pytest.mark.root
def test_a_user_cannot_open_or_hold_the_lock(tmp_path: Path) -> None:
    fd = open_root(str(tmp_path))
    with ApplyLock(fd, str(tmp_path)):
        pass
    lock_dir = tmp_path / "run/freshroot"
    st = os.stat(lock_dir)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
    assert stat.S_IMODE(os.stat(lock_dir / "lock").st_mode) == 0o600
    pid, holds = _attacker_holding(lock_dir)
    try:
        assert not holds, "uid 1000 opened and locked /run/freshroot/lock"
        with ApplyLock(fd, str(tmp_path)):  # never blocked by the user
            pass
    finally:
        _stop(pid)
        os.close(fd)


@pytest.mark.root
def test_a_lock_file_left_open_to_users_is_replaced(tmp_path: Path) -> None:
    """A /run/freshroot made 0755 with a 0644 lock (as freshroot made them before), held by a
    user who opened it then: apply tightens the directory, replaces the file, and runs."""
    lock_dir = tmp_path / "run/freshroot"
    lock_dir.mkdir(parents=True)
    os.chmod(lock_dir, 0o755)
    (lock_dir / "lock").write_text("")
    os.chmod(lock_dir / "lock", 0o644)
    pid, holds = _attacker_holding(lock_dir)
    fd = open_root(str(tmp_path))
    try:
        assert holds  # the attack works on such a file
        with ApplyLock(fd, str(tmp_path)):
            pass
        assert stat.S_IMODE(os.stat(lock_dir).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(lock_dir / "lock").st_mode) == 0o600
    finally:
        _stop(pid)
        os.close(fd)


@pytest.mark.root
@pytest.mark.parametrize("bad", ["user-owned", "hard-link", "symlink", "fifo"])
def test_a_planted_lock_file_is_never_written_through(tmp_path: Path, bad: str) -> None:
    lock_dir = tmp_path / "run/freshroot"
    lock_dir.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "etc-shadow"
    victim.write_text("root:secret\n")
    lock = lock_dir / "lock"
    if bad == "user-owned":
        lock.write_text("")
        os.chown(lock, ATTACKER, ATTACKER)
    elif bad == "hard-link":
        os.link(victim, lock)
    elif bad == "symlink":
        os.symlink(victim, lock)
    else:
        os.mkfifo(lock, 0o600)
    fd = open_root(str(tmp_path))
    try:
        with ApplyLock(fd, str(tmp_path)):
            st = os.lstat(lock)
            assert stat.S_ISREG(st.st_mode)
            assert (st.st_uid, st.st_nlink) == (0, 1)
    finally:
        os.close(fd)
    assert victim.read_text() == "root:secret\n"


@pytest.mark.root
def test_a_user_owned_lock_directory_is_refused(tmp_path: Path) -> None:
    lock_dir = tmp_path / "run/freshroot"
    lock_dir.mkdir(parents=True, mode=0o700)
    os.chown(lock_dir, ATTACKER, ATTACKER)
    fd = open_root(str(tmp_path))
    try:
        with pytest.raises(Exception, match=r"owned by uid 1000.*refusing to trust it"):
            ApplyLock(fd, str(tmp_path)).acquire()
    finally:
        os.close(fd)
    assert not (lock_dir / "lock").exists()


def test_the_holder_is_named_only_while_it_is_that_process(tmp_path: Path) -> None:
    fd = open_root(str(tmp_path))
    try:
        with ApplyLock(fd, str(tmp_path)):
            with pytest.raises(LockHeldError, match=rf"pid {os.getpid()}\b.*") as e:
                ApplyLock(fd, str(tmp_path)).acquire()
            assert f"kill {os.getpid()}" in str(e.value.hint)
            # The pid in the file now names another, live process (the holder is gone and its
            # pid was reused): it must not be named, nor offered to kill.
            (tmp_path / "run/freshroot/lock").write_text(f"{os.getppid()}\n")
            with pytest.raises(LockHeldError) as e:
                ApplyLock(fd, str(tmp_path)).acquire()
            assert "pid" not in str(e.value)
            assert "kill" not in str(e.value.hint)
            (tmp_path / "run/freshroot/lock").write_text(f"{os.getppid()} 1\n")  # a wrong start time
            with pytest.raises(LockHeldError) as e:
                ApplyLock(fd, str(tmp_path)).acquire()
            assert "pid" not in str(e.value)
    finally:
        os.close(fd)


def test_a_waiter_locks_the_new_file_when_undo_removed_the_old_one(tmp_path: Path) -> None:
    """undo removes the lock file and /run/freshroot while holding the lock: a boot service
    waiting on the old file then takes a new one at the path, never the unlinked one."""
    fd = open_root(str(tmp_path))
    held = ApplyLock(fd, str(tmp_path))
    held.acquire()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(held.fd)  # the parent's lock, not the child's: fork copied the fd
            waiter = ApplyLock(fd, str(tmp_path), wait=True)
            waiter.acquire()
            have, there = os.fstat(waiter.fd), os.stat(tmp_path / "run/freshroot/lock")
            code = 0 if (have.st_ino, have.st_dev) == (there.st_ino, there.st_dev) else 2
        finally:
            os._exit(code)
    time.sleep(0.3)  # the child is blocked in flock on the old file by now
    os.unlink(tmp_path / "run/freshroot/lock")
    os.rmdir(tmp_path / "run/freshroot")
    held.release()
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
