"""The record of what persistence made, so ``undo`` removes exactly that.

It lives at /run/freshroot/persist.jsonl *inside the target root*: /run is a tmpfs that
goes away with the mounts it describes, so the record and the state never disagree across
a boot. Each record is one JSON object on one line, appended with a single write(2) to an
O_APPEND file before the change is made: a process killed at any point leaves whole lines
(a torn last line, possible only on power loss, is ignored). Undo is written to tolerate
records of changes that never happened (intent logged, then killed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from freshroot.fs import ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist.dircache import DirCache

DIRECTORY = "/run/freshroot"
NAME = "persist.jsonl"
PATH = f"{DIRECTORY}/{NAME}"

def _made_dirs(root_fd: int) -> list[str]:
    """Create /run and /run/freshroot as needed; the ones created are journalled first."""
    made = []
    for path in ("/run", DIRECTORY):
        with chase(path, root_fd=root_fd, flags=ChaseFlags.PARENT | ChaseFlags.SAFE) as parent:
            if ops.mkdir_at(parent.fd, parent.rest, 0o755):
                made.append(path)
    return made


def _open_journal(root_fd: int) -> int:
    made = _made_dirs(root_fd)
    with chase(DIRECTORY, root_fd=root_fd, flags=ChaseFlags.SAFE) as d:
        fd = ops.open_at(d.fd, NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    for path in made:
        _write(fd, {"op": "journal-dir", "path": path})
    return fd


def _write(fd: int, record: Mapping[str, Any]) -> None:
    os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())


def append(root_fd: int, record: Mapping[str, Any], dirs: DirCache | None = None) -> None:
    """Journal ``record``. With a plan's ``dirs`` the journal stays open for the whole plan."""
    if dirs is None:
        fd = _open_journal(root_fd)
        try:
            _write(fd, record)
        finally:
            os.close(fd)
        return
    if dirs.journal_fd is None:
        dirs.journal_fd = _open_journal(root_fd)
    _write(dirs.journal_fd, record)


def read(root_fd: int) -> list[dict[str, Any]]:
    """All records, oldest first; [] when there is no journal."""
    try:
        with chase(PATH, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as f:
            fd = ops.reopen(f.fd, os.O_RDONLY)
    except FileNotFoundError:
        return []
    try:
        data = ops.read_fd(fd, 1 << 30)
    finally:
        os.close(fd)
    out = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        if isinstance(record, dict):
            out.append(record)
    return out


def remove(root_fd: int) -> None:
    """Drop the journal (after a complete undo), and the directories it made for itself."""
    records = read(root_fd)
    try:
        with chase(DIRECTORY, root_fd=root_fd, flags=ChaseFlags.SAFE) as d:
            ops.unlink_at(d.fd, NAME)
    except FileNotFoundError:
        pass
    for record in reversed(records):
        if record.get("op") == "journal-dir":
            path = str(record["path"])
            try:
                with chase(path, root_fd=root_fd, flags=ChaseFlags.PARENT | ChaseFlags.SAFE) as parent:
                    ops.rmdir_at(parent.fd, parent.rest)
            except OSError:
                pass  # not empty (someone else uses it) or gone: leave it
