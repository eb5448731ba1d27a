"""freshroot-generator's cache: the units of a declaration, written by ``freshroot install``,
replayed at boot while the declaration is byte for byte the one they were made from.

At boot the generator is a Python process started before anything else; parsing the TOML
and building the units costs several times the interpreter's own start-up (tomllib and
dataclasses alone are about 10 ms natively, seconds under emulation). Most boots read the
very declaration ``install`` put in the image, so ``install`` renders the units once, as
the generator would at boot, and stores them with what they were made from:

- everything the declaration's discovery reads (freshroot.config.load): in each search
  directory, ``freshroot.toml`` and every ``conf.d/*.toml``, each with its type and a file's
  bytes (a /dev/null mask as such);
- what else goes into the units: the interpreter (the generator's, in ExecStart), the
  systemd-tmpfiles binary, freshroot's version and the cache format.

The generator compares all of it before it replays anything; any difference (an edited
file, a new drop-in, another interpreter, an upgrade) and it builds the units as always.
So the cache can be stale, never wrong. A layout it cannot vouch for (a symlinked directory
or file other than a /dev/null mask, a file over the size limit, a cache not owned by root
or writable by others) is never cached or never trusted. Only the main system's units are
cached; in the initrd the generator always builds them.

Imports nothing but ``os``, ``stat`` and ``contextlib``: the point is not to load the rest of freshroot.
"""

from __future__ import annotations

import contextlib
import os
import stat

from freshroot.config.search import DROPIN_DIR, MAIN_FILE, MAX_SIZE, SEARCH_DIRS, SUFFIX
from freshroot.fs.trusted import read_trusted

CACHE = "/usr/lib/freshroot/generator.cache"
MAGIC = b"freshroot-generator-cache 1\n"
SYSTEMD_TMPFILES = ("/usr/bin/systemd-tmpfiles", "/bin/systemd-tmpfiles")
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class UncacheableError(Exception):
    """The declaration's layout is one the cache does not vouch for."""


def tmpfiles_binary(root: str = "") -> str:
    """The systemd-tmpfiles the units name: the first of SYSTEMD_TMPFILES there is (below
    ``root``, for a disk being installed)."""
    return next((p for p in SYSTEMD_TMPFILES if os.path.exists(root.rstrip("/") + p)), SYSTEMD_TMPFILES[0])


def _read_regular(dir_fd: int, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UncacheableError(name)  # replaced since the lstat
        chunks = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_SIZE:
                raise UncacheableError(name)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _entry(dir_fd: int, name: str, out: list[bytes], label: str) -> None:
    """``name`` as discovery reads it: absent, a /dev/null mask, a file's bytes, or another
    type (a directory, which discovery passes over, a device...)."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    kind = stat.S_IFMT(st.st_mode)
    out.append(b"%s %o %d" % (label.encode("utf-8", "surrogateescape"), kind,
                               st.st_rdev if stat.S_ISCHR(kind) or stat.S_ISBLK(kind) else 0))
    if stat.S_ISLNK(kind):
        if os.readlink(name, dir_fd=dir_fd) != "/dev/null":
            raise UncacheableError(name)  # its meaning is elsewhere: not vouched for
    elif stat.S_ISREG(kind):
        out.append(_read_regular(dir_fd, name))


def _open_dir(dir_fd: int, name: str) -> int | None:
    """The real directory ``name`` (O_PATH), None when there is none; a symlink is not vouched for."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise UncacheableError(name)
    if not stat.S_ISDIR(st.st_mode):
        return None  # discovery finds nothing there either
    return os.open(name, os.O_PATH | os.O_DIRECTORY | _NOFOLLOW, dir_fd=dir_fd)


def _search_dir(root_fd: int, directory: str, out: list[bytes]) -> None:
    """What discovery reads in one search directory: its main file and its conf.d entries.
    A directory that is not there and one without either read the same: nothing."""
    fd = os.dup(root_fd)
    try:
        for name in directory.strip("/").split("/"):
            new = _open_dir(fd, name)
            if new is None:
                return
            os.close(fd)
            fd = new
        _entry(fd, MAIN_FILE, out, f"{directory}/{MAIN_FILE}")
        conf_path = _open_dir(fd, DROPIN_DIR)
        if conf_path is None:
            return
        try:
            conf = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=conf_path)
        finally:
            os.close(conf_path)
        try:
            for name in sorted(os.listdir(conf)):
                if name.endswith(SUFFIX) and not name.startswith("."):
                    _entry(conf, name, out, f"{directory}/{DROPIN_DIR}/{name}")
        finally:
            os.close(conf)
    finally:
        os.close(fd)


def fingerprint(root_fd: int) -> bytes | None:
    """Everything discovery reads below the root, or None for a layout not vouched for."""
    out: list[bytes] = []
    try:
        for directory in SEARCH_DIRS:
            _search_dir(root_fd, directory, out)
    except (UncacheableError, OSError):
        return None
    return _pack(out)


def _pack(fields: list[bytes]) -> bytes:
    return b"".join(b"%d\n%s" % (len(f), f) for f in fields)


def _unpack(data: bytes) -> list[bytes]:
    fields: list[bytes] = []
    at = 0
    while at < len(data):
        nl = data.index(b"\n", at)
        size = int(data[at:nl])
        fields.append(data[nl + 1:nl + 1 + size])
        at = nl + 1 + size
        if at > len(data):
            raise ValueError("truncated")
    return fields


def key(root_fd: int, *, python: str, tmpfiles: str, version: str) -> bytes | None:
    """What the units depend on besides the code: None when the declaration cannot be cached."""
    found = fingerprint(root_fd)
    if found is None:
        return None
    return _pack([python.encode(), tmpfiles.encode(), version.encode(), found])


def encode(cache_key: bytes, units: list[tuple[str, str]], links: list[tuple[str, str]]) -> bytes:
    """The cache file: the key, then each unit (name, text) and each link (path, target)."""
    fields = [cache_key, b"%d" % len(units)]
    for name, text in units:
        fields += [name.encode(), text.encode()]
    for path, target in links:
        fields += [path.encode(), target.encode()]
    return MAGIC + _pack(fields)


def load(root_fd: int) -> list[bytes] | None:
    """The cache's fields below the root, or None: absent, unreadable, not trusted, garbled."""
    data = read_trusted(root_fd, CACHE, 4 * MAX_SIZE)
    if data is None or not data.startswith(MAGIC):
        return None
    try:
        return _unpack(data[len(MAGIC):])
    except ValueError:
        return None


def replay(root_fd: int, directory: str, *, python: str, version: str) -> list[str] | None:
    """Write the cached units into ``directory`` when the cache is for this very declaration,
    interpreter and freshroot; the paths written, or None (then build them as always)."""
    fields = load(root_fd)
    if not fields or len(fields) < 2:
        return None
    wanted = key(root_fd, python=python, tmpfiles=tmpfiles_binary(), version=version)
    if wanted is None or fields[0] != wanted:
        return None
    try:
        count = int(fields[1])
        units = [(fields[i].decode(), fields[i + 1]) for i in range(2, 2 + 2 * count, 2)]
        links = [(fields[i].decode(), fields[i + 1].decode()) for i in range(2 + 2 * count, len(fields), 2)]
        if len(fields) != 2 + 2 * count + 2 * len(links) or not all(_plain(n) for n, _ in units) or \
                not all(_link_path(p) for p, _ in links):
            return None
        return _write(directory, units, links)
    except (ValueError, IndexError, OSError):
        return None  # built as always, which says what is wrong


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and not name.startswith(".")


def _link_path(path: str) -> bool:
    sub, _, name = path.partition("/")
    return _plain(sub) and _plain(name)


def _write(directory: str, units: list[tuple[str, bytes]], links: list[tuple[str, str]]) -> list[str]:
    """As freshroot.systemd.output.UnitDirectory writes them: each unit through a temporary
    name and a rename, each link ``TARGET.KIND/UNIT -> ../UNIT``."""
    os.makedirs(directory, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    written: list[str] = []
    try:
        for name, text in units:
            temp = f".#{name}.cache"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644, dir_fd=dir_fd)
            try:
                os.fchmod(fd, 0o644)
                view = memoryview(text)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            written.append(name)
        for path, target in links:
            sub, _, name = path.partition("/")
            with contextlib.suppress(FileExistsError):
                os.mkdir(sub, 0o755, dir_fd=dir_fd)
            sub_fd = os.open(sub, os.O_PATH | os.O_DIRECTORY | _NOFOLLOW, dir_fd=dir_fd)
            try:
                try:
                    os.symlink(target, name, dir_fd=sub_fd)
                except FileExistsError:
                    if os.readlink(name, dir_fd=sub_fd) != target:
                        raise
            finally:
                os.close(sub_fd)
            written.append(path)
    finally:
        os.close(dir_fd)
    return written
