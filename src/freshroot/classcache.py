"""The compiled methods of freshroot's dataclasses, kept across runs as .pyc files keep a
module's code.

``@dataclass`` writes each class's methods (``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, and for a frozen class ``__setattr__`` and ``__delattr__``) as source text and
compiles it, at every import. The boot activation imports about a hundred dataclasses, and
compiling their methods is a third of all the instructions ``freshroot apply --boot``
executes (callgrind, bench/boot_cost.py): paid at every boot, seconds on a slow or emulated
machine (issue 19). This module keeps the compiled code of each such text in one file, so a
later run executes the code instead of compiling the text again.

How: the dataclasses module runs its texts with the builtin ``exec``; :func:`enable` gives
that module (and no other) an ``exec`` of its own that looks the text up first. The same text
compiled the same way gives the same code, so the classes are exactly those the standard
library makes; a text not in the file is compiled as before (and kept when recording).

The file (:data:`CACHE`) is written by ``freshroot install`` and by the packages'
post-install step (``python3 -I -m freshroot.classcache``, run by the interpreter the boot
uses), valid only for the very interpreter that wrote it (its cache tag and version string
head the file), and read only when it and every directory above it are root's alone
(freshroot.fs.trusted): unmarshalled code is code to run. Absent, foreign or not trusted:
every class is compiled as usual, only slower.

Only freshroot's own entry points enable it (the command line once its arguments are parsed,
``apply --boot`` and the generator before they load the rest), never an import of freshroot
as a library.
"""

from __future__ import annotations

import builtins
import contextlib
import marshal
import os
import sys
from types import CodeType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

CACHE = "/usr/lib/freshroot/dataclass-methods.cache"
MAX_SIZE = 16 << 20
_codes: dict[str, CodeType] = {}
_state = {"recording": False, "missed": 0}


def _header() -> bytes:
    """What the file is for: marshal's format and the byte code belong to one interpreter."""
    version = " ".join(sys.version.split())
    return f"freshroot-dataclass-methods 1 {sys.implementation.cache_tag} {version}\n".encode()


def _exec(source: Any, namespace: dict[str, Any] | None = None, local: Any = None, /) -> None:
    """dataclasses' ``exec``: a text's code from the cache, else compiled (and kept when
    recording)."""
    if isinstance(source, str):
        code = _codes.get(source)
        if code is None:
            # dont_inherit: compiled as the builtin exec compiles dataclasses' texts, without
            # this module's `from __future__ import annotations`.
            code = compile(source, "<string>", "exec", dont_inherit=True)
            _state["missed"] += 1
            if _state["recording"]:
                _codes[source] = code
        source = code
    builtins.exec(source, namespace, local)  # noqa: S102 (dataclasses' own call, its own text)


def load(data: bytes | None) -> int:
    """Take the compiled texts of a cache file's bytes; how many (0: none, foreign, garbled)."""
    header = _header()
    if data is None or not data.startswith(header):
        return 0
    try:
        # Trusted as the .pyc files are: root's alone (read_trusted), for this interpreter.
        codes = marshal.loads(data[len(header):])  # noqa: S302
    except (EOFError, ValueError, TypeError):
        return 0
    if not isinstance(codes, dict):
        return 0
    good = {k: v for k, v in codes.items() if isinstance(k, str) and isinstance(v, CodeType)}
    _codes.update(good)
    return len(good)


def enable(*, root_fd: int | None = None, recording: bool = False) -> int:
    """From now on, dataclasses created in this process take their methods' code from
    :data:`CACHE` (below ``root_fd``, / by default) when it has them; ``recording`` keeps
    what it compiles, for :func:`dump`. Returns how many texts the file had."""
    import dataclasses

    _state["recording"] = recording
    vars(dataclasses)["exec"] = _exec
    if recording:
        return 0
    from freshroot.fs.trusted import read_trusted

    own = root_fd is None
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if own else root_fd
    assert fd is not None
    try:
        return load(read_trusted(fd, CACHE, MAX_SIZE))
    finally:
        if own:
            os.close(fd)


def dump() -> bytes:
    """The file's bytes: what this process compiled while recording."""
    return _header() + marshal.dumps(dict(sorted(_codes.items())))


def record_all() -> bytes:
    """Import every module of freshroot while recording, and return the file's bytes."""
    import importlib
    import pkgutil

    import freshroot

    enable(recording=True)
    for module in pkgutil.walk_packages(freshroot.__path__, "freshroot."):
        if module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:
            continue  # an optional extra (pyinfra) that is not installed: nothing to keep
    return dump()


def main(argv: list[str] | None = None) -> int:
    """``python3 -I -m freshroot.classcache [--root DIR]``: write :data:`CACHE` below DIR (/)
    for the interpreter running it; ``--remove``: remove it (the packages' removal)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--remove"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(CACHE)
        return 0
    root = args[1] if args[:1] == ["--root"] and len(args) == 2 else "/" if not args else None
    if root is None:
        sys.stderr.write("usage: python3 -m freshroot.classcache [--root DIR | --remove]\n")
        return 2
    data = record_all()  # first: a module imported before recording has its classes made already
    from freshroot.fs.atomic import replace_at
    from freshroot.fs.ops import mkdir_parents, open_root

    try:
        root_fd = open_root(root)
        try:
            with mkdir_parents(root_fd, os.path.dirname(CACHE), 0o755) as d:
                replace_at(d.fd, os.path.basename(CACHE), data, mode=0o644)
        finally:
            os.close(root_fd)
    except OSError as e:
        sys.stderr.write(f"freshroot.classcache: {root.rstrip('/')}{CACHE}: {e.strerror}\n")
        return 73
    sys.stdout.write(f"{root.rstrip('/')}{CACHE}: {len(_codes)} compiled dataclass methods "
                     f"for {sys.implementation.cache_tag}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
