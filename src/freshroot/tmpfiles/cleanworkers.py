"""Cleaning sibling directories in forked worker processes.

A big clean is bound by the time per entry: statx, and open, flock, unlinkat and close for
each old file. systemd-tmpfiles makes those calls from C; freshroot makes the same calls from
Python, which adds about 2 us of interpreter time to each entry. Where the machine has more
than one CPU, the directories below a clean path are shared out to worker processes, which
take the next directory as they get free (threads would not help: the GIL serialises the
interpreter time, and measured slower than one thread).

Only the quiet, real run does this (no --dry-run, no --explain, no debug notes), so that what
is printed comes in systemd's order, and only once the walk has met many entries
(Cleaner.parallel_after), so that small trees are never split. What is removed is what a
sequential walk removes; the one way in which sibling directories depend on each other is a
file with hard links in both, since removing one link renews the inode's ctime: the workers
take turns (a lock) for files with more than one link, so that, as in systemd, a later link
sees the renewed ctime.

FRESHROOT_CLEAN_WORKERS sets the number of processes (1: never fork); the default is the
number of CPUs this process may run on, at most 4.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping

# A worker's exit status: the OR of what its tasks returned (bits the caller defines, below
# 0x80), with CRASHED added when it died of a signal or an unexpected exception.
CRASHED = 0x80
MAX_DEFAULT = 4
_PR_SET_PDEATHSIG = 1


def default_workers(environ: Mapping[str, str] | None = None,
                    warn: Callable[[str], None] = lambda _m: None) -> int:
    """How many processes a big clean uses: $FRESHROOT_CLEAN_WORKERS, else the CPUs we may use
    (at most 4). A value that is not a whole number from 1 up is ignored, with a warning (as
    systemd-tmpfiles warns about its own variables)."""
    value = (os.environ if environ is None else environ).get("FRESHROOT_CLEAN_WORKERS")
    if value is not None:
        if value.strip().isdigit() and int(value) >= 1:
            return int(value)
        warn(f"Cannot parse value of $FRESHROOT_CLEAN_WORKERS ({value!r}), ignoring.")
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT))


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to end this worker when the parent dies (a killed run leaves no worker
    behind). Without libc's prctl the worker still ends: it reads EOF once the parent is gone."""
    try:
        from freshroot.fs import _libc

        _libc.libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(CRASHED)


def run_in_workers(count: int, tasks: int, work: Callable[[int], int],
                   on_error: Callable[[str], None]) -> int:
    """Run ``work(i)`` for every i in range(tasks) in ``count`` forked processes, each taking
    the next task as it gets free. Returns the OR of all results, with CRASHED set when a
    worker did not finish (``on_error`` has been told why, where it could be). Raises OSError
    when not one worker could be started: then nothing was done, and the caller does it. When
    fewer could be started than asked for, those take every task.

    The tasks go through a pipe as 4-byte numbers: writes that small are atomic and a pipe
    read is not split between readers, so each number reaches exactly one worker. A worker
    never returns into the caller's code: it leaves with os._exit, whatever happens.
    """
    parent = os.getpid()
    # Nothing buffered may be written twice: a worker's first message would flush a copy.
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pids: list[int] = []
    try:
        for _ in range(max(1, min(count, tasks))):
            try:
                pid = os.fork()
            except OSError:  # out of processes or memory
                if not pids:
                    raise
                break
            if pid == 0:  # the worker
                status = CRASHED
                try:
                    os.close(w)
                    _die_with_parent(parent)
                    status = 0
                    while len(data := os.read(r, 4)) == 4:
                        status |= work(int.from_bytes(data, "little")) & ~CRASHED
                except KeyboardInterrupt:  # Ctrl-C reaches every worker: the caller says so once
                    status |= CRASHED
                except BaseException as e:  # noqa: BLE001 - a worker must reach os._exit
                    status |= CRASHED
                    with contextlib.suppress(BaseException):  # nothing more can be done
                        on_error(f"A clean worker process failed: {type(e).__name__}: {e}")
                finally:
                    os._exit(status)
            pids.append(pid)
        os.close(r)
        r = -1
        try:
            for i in range(tasks):  # blocks while the pipe is full: the workers drain it
                os.write(w, i.to_bytes(4, "little"))
        except BrokenPipeError:  # every worker is gone (each said why): the run fails below
            pass
    finally:
        if r >= 0:
            os.close(r)
        os.close(w)  # the workers read EOF once the tasks are taken
        result = 0
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            result |= code if 0 <= code < 256 else CRASHED
            if code < 0:
                on_error(f"A clean worker process was killed by signal {-code}.")
    return result
