"""Scratch roots for the persistence tests: build one, apply a declaration, take snapshots."""

from __future__ import annotations

import hashlib
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from freshroot.config.table import Table
from freshroot.fs.ops import open_root
from freshroot.persist.model import Persistence
from freshroot.persist.planner import plan
from freshroot.persist.steps import Outcome, load, run_actions
from freshroot.plan.action import Action, Context

PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
GROUP = "root:x:0:\nalice:x:1000:\n"


def make_root(base: Path) -> Path:
    """A small root with passwd/group and an empty storage at /persist."""
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    (root / "persist").mkdir()
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


def declaration(text: str) -> Table:
    return Table(tomllib.loads(text), (), "test.toml", {})


@dataclass
class Applied:
    root: Path
    fd: int
    p: Persistence

    def ctx(self, **kw: object) -> Context:
        return Context(self.fd, str(self.root), **kw)  # type: ignore[arg-type]

    def plan(self, **kw: object) -> list[Action]:
        return plan(self.p, self.ctx(**kw))

    def apply(self, **kw: object) -> Outcome:
        ctx = self.ctx(**kw)
        return run_actions(plan(self.p, ctx), ctx)


def setup(root: Path, text: str) -> Applied:
    fd = open_root(str(root))
    return Applied(root, fd, load(declaration(text), fd))


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root`` as seen through the mounts: type, mode, owner, content."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            extra: object = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, extra)
    return out


def contents(root: Path) -> set[str]:
    """Hashes of every non-empty regular file below ``root`` (mounts included)."""
    return {v[4] for v in snapshot(root).values()
            if v[0] == stat.S_IFREG and isinstance(v[4], str) and v[4] != hashlib.sha256(b"").hexdigest()}


def is_mounted(path: Path) -> bool:
    from freshroot.fs.mount import mountinfo

    return any(m.mount_point == str(path) for m in mountinfo())
