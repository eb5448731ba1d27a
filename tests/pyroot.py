"""A scratch root with a Python that runs under chroot: the host's /usr/bin/python3 (Debian's),
the libraries it and its C modules load, and its standard library (without the tests and GUI)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

HOST_PYTHON = "/usr/bin/python3"
STDLIB_SKIP = ("test", "idlelib", "tkinter", "lib2to3", "ensurepip", "turtledemo", "pydoc_data", "__pycache__",
               "unittest", "config-3*")


def copy_host_python(root: Path) -> str:
    """The host's /usr/bin/python3 (Debian's), its libraries and standard library, into root:
    a target whose interpreter can run under chroot. Returns its version ("3.11")."""
    binary = Path(HOST_PYTHON).resolve()
    version = binary.name.removeprefix("python")
    (root / "usr" / "bin").mkdir(parents=True)
    shutil.copy2(binary, root / "usr" / "bin" / binary.name)
    (root / "usr" / "bin" / "python3").symlink_to(binary.name)
    stdlib = Path(f"/usr/lib/python{version}")
    # The interpreter's libraries and those of its C modules (ctypes needs libffi).
    objects = [str(binary), *(str(p) for p in (stdlib / "lib-dynload").glob("*.so"))]
    ldd = subprocess.run(["ldd", *objects], capture_output=True, text=True, check=False).stdout
    for lib in set(re.findall(r"(/\S+) \(0x", ldd)):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, dest)
    shutil.copytree(stdlib, root / stdlib.relative_to("/"), symlinks=True,
                    ignore=shutil.ignore_patterns(*STDLIB_SKIP))
    return version
