"""Finding, reading and merging the declaration, as systemd finds its configuration.

Below the target root (never outside it: every path goes through :func:`freshroot.fs.chase`):

- the main file ``freshroot.toml``: the first found of /etc/freshroot, /run/freshroot,
  /usr/local/lib/freshroot, /usr/lib/freshroot (a symlink to /dev/null masks it, and those
  below it);
- drop-ins ``conf.d/*.toml`` from all four directories: for one file name the highest
  directory wins (/etc over /run over /usr/local/lib over /usr/lib), a symlink to /dev/null
  (or an empty file) masks that name, and the survivors are read in order of file name,
  whatever directory they are in, after the main file.

``--config PATH`` (``paths``) replaces discovery: PATH is on the host, and a directory means
its ``*.toml`` in order of name. Files are merged in order by :mod:`freshroot.config.merge`,
later ones over earlier ones.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from freshroot.config.merge import Merger
from freshroot.config.parse import parse_bytes
from freshroot.config.search import DROPIN_DIR, MAIN_FILE, MAX_SIZE, SEARCH_DIRS, SUFFIX
from freshroot.config.table import Table
from freshroot.errors import ConfigError, Location
from freshroot.fs import ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.rootpaths import in_root

_DEV_NULL = os.makedev(1, 3)


@dataclass(frozen=True, slots=True)
class Source:
    """One file of the declaration: where it is, and whether it lies below the target root."""

    path: str  # below the root ("/etc/freshroot/freshroot.toml"), or on the host with --config
    in_root: bool


@dataclass(frozen=True, slots=True)
class Loaded:
    """The merged declaration and what went into it (for ``freshroot config show``)."""

    table: Table
    files: tuple[str, ...]  # the files read, in merge order, as named in messages
    masked: tuple[str, ...]  # entries that masked a name (symlinks to /dev/null)
    # What was read, in merge order: (source, bytes). An apply keeps these as its generation
    # (freshroot.generations), so a rollback has the very bytes, standard input included.
    contents: tuple[tuple[Source, bytes], ...] = ()


def _error(error: OSError, name: str) -> ConfigError:
    what = error.strerror or str(error)
    return ConfigError(f"cannot read the declaration: {what}", location=Location(name))


def _open_dir(root_fd: int, path: str) -> int | None:
    """An O_PATH fd of directory ``path`` below the root, or None when there is none."""
    try:
        found = chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ENOTDIR:
            return None  # a component is not a directory: nothing is configured there
        raise _error(e, path) from None
    if not stat.S_ISDIR(found.st.st_mode):
        found.close()
        return None
    return found.detach()


def _masks(dir_fd: int, name: str) -> bool | None:
    """True if ``name`` is a symlink to /dev/null, False if it is an entry, None if absent.

    The link's text is checked, not its target below the root: an offline root need not
    have a /dev/null, and systemd masks by the symlink alone.
    """
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(name, dir_fd=dir_fd) == "/dev/null"
    return False


def _read_fd(fd: int, name: str) -> bytes:
    """Read a regular file from an O_PATH fd; /dev/null reads as empty; other types refused."""
    st = os.fstat(fd)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == _DEV_NULL:
        return b""
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("cannot read the declaration: not a regular file", location=Location(name))
    rfd = ops.reopen(fd, os.O_RDONLY)
    try:
        raw = ops.read_fd(rfd, MAX_SIZE + 1)
    finally:
        os.close(rfd)
    if len(raw) > MAX_SIZE:
        raise ConfigError(f"the file is larger than {MAX_SIZE >> 20} MiB; is it really a declaration?",
                          location=Location(name))
    return raw


def _read_in_root(root_fd: int, path: str, name: str) -> bytes:
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE) as found:
            return _read_fd(found.fd, name)
    except OSError as e:
        raise _error(e, name) from None


STDIN = "-"  # --config -: the declaration on standard input
STDIN_NAME = "<stdin>"  # how messages name it


def _read_stream(fd: int, name: str) -> bytes:
    """A pipe (``--config -``, ``--config <(...)``): read to its end, at most MAX_SIZE. Only
    for what the invoking user names on the host, never for a file below the target root."""
    raw = ops.read_fd(fd, MAX_SIZE + 1)
    if len(raw) > MAX_SIZE:
        raise ConfigError(f"more than {MAX_SIZE >> 20} MiB; is it really a declaration?", location=Location(name))
    return raw


def _read_on_host(path: str, name: str) -> bytes:
    """``path`` on the host, named ``name`` in messages."""
    if path == STDIN:
        try:
            return _read_stream(0, STDIN_NAME)
        except OSError as e:
            raise _error(e, STDIN_NAME) from None
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        raise _error(e, name) from None
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            rfd = ops.reopen(fd, os.O_RDONLY)
            try:
                return _read_stream(rfd, name)
            finally:
                os.close(rfd)
        return _read_fd(fd, name)
    except OSError as e:
        raise _error(e, name) from None
    finally:
        os.close(fd)


def discover(root_fd: int) -> tuple[list[Source], list[str]]:
    """The declaration files below the root in merge order, and the entries that masked one."""
    sources: list[Source] = []
    masked: list[str] = []
    for directory in SEARCH_DIRS:
        dir_fd = _open_dir(root_fd, directory)
        if dir_fd is None:
            continue
        try:
            state = _masks(dir_fd, MAIN_FILE)
        finally:
            os.close(dir_fd)
        if state is None:
            continue
        path = f"{directory}/{MAIN_FILE}"
        if state:
            masked.append(path)
        else:
            sources.append(Source(path, in_root=True))
        break
    dropins: dict[str, str] = {}  # file name -> path of the entry that wins it
    for directory in SEARCH_DIRS:
        conf_d = f"{directory}/{DROPIN_DIR}"
        dir_fd = _open_dir(root_fd, conf_d)
        if dir_fd is None:
            continue
        try:
            for name in ops.listdir_fd(dir_fd):
                if name in dropins or not name.endswith(SUFFIX) or name.startswith("."):
                    continue
                try:
                    st = os.lstat(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    continue  # removed since the listing
                if stat.S_ISDIR(st.st_mode):
                    continue  # not a file: it neither counts nor shadows a lower one
                dropins[name] = f"{conf_d}/{name}"
                if _masks(dir_fd, name):
                    masked.append(dropins[name])
        except OSError as e:
            raise _error(e, conf_d) from None
        finally:
            os.close(dir_fd)
    masked_set = set(masked)
    sources += [Source(dropins[n], in_root=True) for n in sorted(dropins) if dropins[n] not in masked_set]
    return sources, masked


def expand_paths(paths: Sequence[str]) -> list[Source]:
    """``--config`` arguments on the host: files as given, directories as their ``*.toml``."""
    sources: list[Source] = []
    if list(paths).count(STDIN) > 1:
        raise ConfigError("--config - (standard input) can be given once", location=Location(STDIN_NAME))
    for path in paths:
        if path == STDIN:
            sources.append(Source(STDIN, in_root=False))
            continue
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError as e:
            raise _error(e, path) from None
        if not is_dir:
            sources.append(Source(path, in_root=False))
            continue
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            raise _error(e, path) from None
        for name in names:
            full = os.path.join(path, name)
            if name.endswith(SUFFIX) and not name.startswith(".") and not os.path.isdir(full):
                sources.append(Source(full, in_root=False))
    return sources


def load(root_fd: int, paths: Sequence[str] | None = None, *, root: str = "/") -> Loaded:
    """Find, read and merge the declaration. ``root`` only names files in messages (a
    ``--config`` file inside the root as the root sees it)."""
    if paths is None:
        sources, masked = discover(root_fd)
    else:
        sources, masked = expand_paths(paths), []
    merger = Merger()
    contents: list[tuple[Source, bytes]] = []
    for source in sources:
        # Messages name a file below the root as the root sees it (/etc/freshroot/...), and
        # a --config file on the host as a host path, unless it is inside the root too (a
        # generation rollback applies: /persist/.freshroot/generations/...): freshroot.rootpaths.
        if source.in_root:
            name = source.path
            raw = _read_in_root(root_fd, source.path, name)
        else:
            name = STDIN_NAME if source.path == STDIN else in_root(source.path, root)
            raw = _read_on_host(source.path, name)
        contents.append((source, raw))
        document = parse_bytes(raw, name)
        merger.add(document.data, document.positions, name)
    return Loaded(merger.table(), tuple(merger.files), tuple(masked), tuple(contents))


def load_declaration(root_fd: int, paths: Sequence[str] | None = None, *, root: str = "/") -> Table:
    """The merged declaration of the root at ``root_fd`` (an empty Table when there is none).

    ``paths`` (``--config``) replaces discovery; see the module doc. Errors are ConfigError
    with the file and, for syntax errors, the line.
    """
    return load(root_fd, paths, root=root).table

