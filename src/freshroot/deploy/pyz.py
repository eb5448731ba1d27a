"""``freshroot.pyz``: this freshroot as one file a host runs with ``python3 freshroot.pyz``
(a zipapp, PEP 441), for a rescue system that has Python but no freshroot.

Built from the package as it is imported (a source tree, a site directory, or a pyz itself),
read through importlib.resources, so ``freshroot deploy`` ships the controller's own
freshroot. Reproducible: entries sorted, every time stamp 1980-01-01, fixed modes, and each
module also compiled into an *unchecked hash-based* .pyc (PEP 552) beside its source, so
zipimport loads it without compiling (zipimport cannot write a cache: without them every
run compiles freshroot again, seconds on a slow rescue system) and without comparing time
stamps. A Python whose magic number differs ignores those .pyc files and compiles the
source. ``tools/make-pyz`` runs :func:`main`.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import marshal
import os
import stat
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable

SHEBANG = b"#!/usr/bin/env python3\n"
MAIN = b"import sys\nfrom freshroot.cli import main\nsys.exit(main())\n"
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
SKIP_DIRS = frozenset({"__pycache__"})


def package_files(package: str = "freshroot") -> Iterator[tuple[str, bytes]]:
    """(``freshroot/sub/name``, content) of every file of the package, sorted, without
    compiled caches: what ``pip install`` would put in site-packages."""
    def walk(node: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                if child.name not in SKIP_DIRS:
                    yield from walk(child, f"{prefix}/{child.name}")
            elif child.is_file() and not child.name.endswith((".pyc", ".pyo")):
                yield f"{prefix}/{child.name}", child.read_bytes()

    yield from walk(resources.files(package), package)


def compiled(name: str, source: bytes) -> bytes:
    """``source`` as an unchecked hash-based .pyc of this interpreter (PEP 552, flags 0b01):
    loaded without looking at the source or a time stamp. Marshal format 2, which has no
    back-references: format 3 writes one where an object's reference count is above one, so
    its bytes depend on what else the building process has imported."""
    code = compile(source, name, "exec", dont_inherit=True)
    flags = (1).to_bytes(4, "little")
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code, 2)


def _entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.create_system = 3  # Unix, whatever the builder runs on: the modes above are Unix modes
    return info


def build_bytes(*, compile_modules: bool = True) -> bytes:
    """The whole pyz: the shebang line, then the zip archive."""
    entries: list[tuple[str, bytes]] = [("__main__.py", MAIN)]
    for name, data in package_files():
        entries.append((name, data))
        if compile_modules and name.endswith(".py"):
            entries.append((name + "c", compiled(name, data)))
    out = io.BytesIO()
    out.write(SHEBANG)
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in sorted(entries):
            archive.writestr(_entry(name, 0o644), data, compresslevel=9)
    return out.getvalue()


def write(path: str, *, compile_modules: bool = True) -> int:
    """Write the pyz to ``path`` (atomically, mode 0755); its size."""
    data = build_bytes(compile_modules=compile_modules)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".freshroot-pyz-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o755)  # noqa: S103 - a program anyone may run, as /usr/bin's
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make-pyz", description="Build freshroot.pyz, a zipapp of this freshroot.")
    parser.add_argument("output", nargs="?", default="freshroot.pyz", help="where to write it (default: freshroot.pyz)")
    parser.add_argument("--no-compile", action="store_true",
                        help="sources only: no .pyc of this Python (the host then compiles at every run)")
    args = parser.parse_args(argv)
    try:
        size = write(args.output, compile_modules=not args.no_compile)
    except OSError as e:
        sys.stderr.write(f"make-pyz: {args.output}: {e.strerror}\n")
        return 73
    sys.stdout.write(f"{args.output}: {size} bytes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
