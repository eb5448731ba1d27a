"""Helpers for the fs tests: a scratch root held by an fd, and work done in a forked child."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

USER = 1000  # a real non-root uid (and gid) for the "unprivileged user" of the adversarial tests
OTHER = 1001


@dataclass
class Root:
    path: Path
    fd: int

    def p(self, rel: str) -> Path:
        return self.path / rel


def in_child(fn: Callable[[], None], *, uid: int | None = None) -> None:
    """Run ``fn`` in a forked child, waited for by its pid; its failure fails the caller.

    With ``uid`` the child really becomes that user first (groups, gid and uid dropped for
    good), so what it creates is created by an unprivileged process, not chown'ed after.
    Used also for unshare(CLONE_NEWNS), which must not touch the test process.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            if uid is not None:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            fn()
        except BaseException:  # noqa: BLE001 - everything goes back to the parent as text
            os.write(w, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        err = f.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise AssertionError(f"child (uid {uid}) failed:\n{err}")
