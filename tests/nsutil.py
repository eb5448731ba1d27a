"""Run test code inside a private mount namespace, so mounts never reach the host.

``in_mount_namespace(fn)`` forks; the child unshares its mount namespace, makes / rprivate,
runs ``fn`` and sends back its result (or the exception text) through a pipe; the parent
waits for that child by pid. Mounts die with the child's namespace.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import traceback
from collections.abc import Callable
from typing import TypeVar

from freshroot.fs.mount import make_rprivate

T = TypeVar("T")
CLONE_NEWNS = 0x00020000


def in_mount_namespace(fn: Callable[[], T]) -> T:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
            make_rprivate("/")
            payload = pickle.dumps(("ok", fn()))
        except BaseException:  # noqa: BLE001 - report everything to the parent, never unwind into pytest
            payload = pickle.dumps(("error", traceback.format_exc()))
        with os.fdopen(w, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)  # noqa: S301 - our own child's data
    if status != "ok":
        raise AssertionError(f"in the private mount namespace:\n{value}")
    return value  # type: ignore[no-any-return]
