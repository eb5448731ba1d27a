"""Shared helpers for the activation tests: scratch roots, declarations, tree snapshots."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from freshroot.compose import build_plan
from freshroot.config.load import load_declaration
from freshroot.fs.ops import open_root
from freshroot.plan.action import Step
from freshroot.plan.handlers import run_plan
from freshroot.plan.result import Report

BASE_PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
BASE_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def make_root(path: Path) -> Path:
    """A small root: /etc with passwd and group, /usr/bin with env, /bin/sh."""
    (path / "etc").mkdir(parents=True, exist_ok=True)
    (path / "etc" / "passwd").write_text(BASE_PASSWD)
    (path / "etc" / "group").write_text(BASE_GROUP)
    (path / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    (path / "usr" / "bin" / "dash").write_text("#!fake\n")
    (path / "bin").mkdir(exist_ok=True)
    return path


def write_decl(path: Path, text: str) -> str:
    decl = path / "decl.toml"
    decl.write_text(text)
    return str(decl)


def steps_of(root: Path, decl: str) -> list[Step]:
    fd = open_root(str(root))
    try:
        return build_plan(load_declaration(fd, [decl], root=str(root)))
    finally:
        os.close(fd)


def apply(root: Path, decl: str, *, dry_run: bool = False, fail_fast: bool = False, fix: bool = False) -> Report:
    return run_plan(str(root), [decl], dry_run=dry_run, fail_fast=fail_fast, fix=fix)


def journal_of(root: Path) -> dict[str, Any] | None:
    """The root's apply journal, as status, undo and a resumed apply read it."""
    from freshroot.plan.journal import read

    fd = open_root(str(root))
    try:
        return read(fd)
    finally:
        os.close(fd)


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root``: type, mode, owner, size, mtime, content hash or link target."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, extra)
    return out
