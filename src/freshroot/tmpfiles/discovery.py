"""Which tmpfiles.d files are read, in which order, as systemd's conf_files_list() decides.

Files named ``*.conf`` in the configuration directories; a name in an earlier directory hides
the same name in later ones; a symlink to /dev/null (or any character device) hides it and is
not listed; an empty file hides it and is listed as a mask; the rest is ordered by file name.

Everything is resolved below the root fd with freshroot.fs.chase, as systemd 262 lists them
(chaseat() from the root's fd): an absolute symlink or a ``..`` in a directory or in a file
name never leaves --root, so an offline NixOS root whose /etc/tmpfiles.d entries point into
/nix/store or /etc/static reads the root's files, never the host's. A symlink to /dev/null
masks even when the root has no /dev/null. A file whose symlink leads nowhere in the root is
left out with systemd's warning (it hides nothing). Files are read through the same chase
(``ListedFiles``), where systemd 262 opens the root-joined path string on the host: see the
difference "conf-files-inside-root" in freshroot.tmpfiles.differences.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from freshroot.fs import ops
from freshroot.fs.chase import Chased, ChaseFlags, chase
from freshroot.tmpfiles.fields import join_root
from freshroot.tmpfiles.messages import Level, Message, Reporter

SYSTEM_DIRS = ("/etc/tmpfiles.d", "/run/tmpfiles.d", "/usr/local/lib/tmpfiles.d", "/usr/lib/tmpfiles.d")


def user_dirs(environ: Mapping[str, str]) -> tuple[str, ...]:
    """user_config_paths(), highest priority first: the config home, $XDG_CONFIG_DIRS, the
    runtime dir, the data home, $XDG_DATA_DIRS (each with /user-tmpfiles.d)."""
    home = environ.get("HOME", "")

    def xdg(var: str, fallback: str) -> list[str]:
        value = environ.get(var, "")
        if value.startswith("/"):
            return [value]
        return [os.path.join(home, fallback)] if home.startswith("/") else []

    def dirs(var: str, default: str) -> list[str]:
        value = environ.get(var, "") or default
        return [d for d in value.split(":") if d.startswith("/")]

    runtime = environ.get("XDG_RUNTIME_DIR", "")
    found = [*xdg("XDG_CONFIG_HOME", ".config"), *dirs("XDG_CONFIG_DIRS", "/etc/xdg"),
             *([runtime] if runtime.startswith("/") else []), *xdg("XDG_DATA_HOME", ".local/share"),
             *dirs("XDG_DATA_DIRS", "/usr/local/share:/usr/share")]
    return tuple(os.path.join(d, "user-tmpfiles.d") for d in found)


@dataclass(frozen=True, slots=True)
class ConfFile:
    """One file in the list.

    ``path`` is the name systemd prints (root joined, its directory resolved in the root);
    ``resolved`` where the file is inside the root ("" for one that is not on disk: the
    --replace position, or text given by the caller); ``mask`` an empty file (listed by
    --cat-config, nothing to read); ``dir`` the configuration directory it was found in, as
    configured (its priority); ``replacement`` the place of --replace's files.
    """

    name: str
    path: str
    mask: bool = False
    resolved: str = ""
    dir: str = ""
    replacement: bool = False


class DiscoveryError(Exception):
    """The list cannot be made (a --replace path that cannot be resolved): systemd logs
    ``message`` and exits 1 before reading anything."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def glued(root: str, path: str) -> str:
    """systemd's '%s%s' of the root and the path without its leading slash, as its conf-files
    messages name a path: under --root the two run together ("/mntetc/tmpfiles.d/a.conf")."""
    return root + path.lstrip("/")


def _in(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def _warn(report: Reporter | None, text: str) -> None:
    if report is not None:
        report(Message(Level.WARNING, text))


@dataclass
class _Replacement:
    """The file that --replace=PATH stands for, in its directory."""
    name: str
    dir: str  # its directory, resolved in the root
    file: ConfFile


def _replacement(root_fd: int, root: str, replace: str) -> _Replacement:
    """conf_file_new_at() for --replace=PATH: the directory is resolved in the root (a missing
    tail is fine), and so is the file, which need not exist."""
    name = posixpath.basename(replace)
    parent = posixpath.dirname(replace) or "/"
    try:
        with chase(parent, root_fd=root_fd, flags=ChaseFlags.NONEXISTENT) as found:
            if not found.rest and not stat.S_ISDIR(found.st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), parent)
            directory = _in(found.path, found.rest) if found.rest else found.path
    except OSError as e:
        raise DiscoveryError(f"Failed to chase '{glued(root, parent)}': {e.strerror}") from None
    path = _in(directory, name)
    try:
        chase(path, root_fd=root_fd, flags=ChaseFlags.NONEXISTENT).close()
    except OSError as e:
        raise DiscoveryError(f"Failed to chase '{glued(root, replace)}': {e.strerror}") from None
    return _Replacement(name, directory, ConfFile(name, join_root(root, path), replacement=True))


def _entry(root_fd: int, root: str, configured: str, directory: Chased, name: str,
           report: Reporter | None) -> ConfFile | Literal[False] | None:
    """One directory entry: a ConfFile, None for a mask, False for nothing (it hides nothing)."""
    original = _in(configured, name)
    path = _in(directory.path, name)
    try:
        st = ops.lstat_at(directory.fd, name)
    except FileNotFoundError:
        return False  # gone since the directory was read
    resolved = path
    if stat.S_ISLNK(st.st_mode):
        try:
            with chase(path, root_fd=root_fd, flags=ChaseFlags.NONEXISTENT) as found:
                if found.rest:
                    # Not there. A link to /dev/null masks even where the root has none (an image).
                    if _in(found.path, found.rest) == "/dev/null":
                        return None
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
                st, resolved = found.st, found.path
        except OSError as e:
            _warn(report, f"Failed to chase '{glued(root, original)}': {e.strerror}")
            return False
    if stat.S_ISCHR(st.st_mode):  # stat_may_be_dev_null(): any character device masks
        return None
    if not stat.S_ISREG(st.st_mode):
        return False
    return ConfFile(name, join_root(root, path), mask=st.st_size == 0, resolved=resolved, dir=configured)


def list_files(root_fd: int, root: str, dirs: tuple[str, ...], replace: str | None = None,
               report: Reporter | None = None) -> list[ConfFile]:
    """conf_files_list_with_replacement(): the ordered files below ``root_fd`` (``root`` is how
    messages name it). With ``replace``, the ConfFile marked ``replacement`` is where the
    command-line files are read; it takes the place of the file of that name in its own
    directory, but not of one in a directory before it (then there is none, and the
    command-line files are not read at all, as in systemd). Raises DiscoveryError."""
    pending = _replacement(root_fd, root, replace) if replace is not None else None
    found: dict[str, ConfFile | None] = {}  # None: masked (hides later ones, not listed)

    def insert(r: _Replacement) -> None:
        if found.get(r.name) is None:  # a mask does not stop it, a file does
            found[r.name] = r.file

    for d in dirs:
        try:
            directory = chase(d, root_fd=root_fd)
        except FileNotFoundError:
            continue
        except OSError as e:
            _warn(report, f"Failed to chase and open directory '{glued(root, d)}', ignoring: {e.strerror}")
            continue
        with directory:
            try:
                if not stat.S_ISDIR(directory.st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), d)
                # In the directory's own order, as systemd reads it: its warnings come in that order.
                names = ops.listdir_fd(directory.fd, sort=False)
            except OSError as e:
                _warn(report, f"Failed to chase and open directory '{glued(root, d)}', ignoring: {e.strerror}")
                continue
            if pending is not None and pending.dir == directory.path:
                insert(pending)
                pending = None
            for name in names:
                if not name.endswith(".conf") or name.startswith(".") or name in found:
                    continue
                entry = _entry(root_fd, root, d, directory, name, report)
                if entry is not False:
                    found[name] = entry
    if pending is not None:
        insert(pending)
    return [f for _, f in sorted(found.items()) if f is not None]


class ListedFiles:
    """Reads listed files below the root: each directory is chased once, and each file opened in
    it by name, never through a symlink (a listed file's resolved path has none; one swapped in
    since is refused with ELOOP). OSError if a file is gone. Use as a context manager."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self._dirs: dict[str, int] = {}

    def read(self, f: ConfFile) -> bytes:
        parent, name = posixpath.split(f.resolved)
        dir_fd = self._dirs.get(parent)
        if dir_fd is None:
            with chase(parent, root_fd=self.root_fd) as found:
                dir_fd = self._dirs[parent] = found.detach()
        fd = ops.open_path_at(dir_fd, name)
        try:
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), f.path)
            return ops.read_opath(fd, st)
        finally:
            os.close(fd)

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def __enter__(self) -> ListedFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def search(root_fd: int, root: str, dirs: tuple[str, ...], name: str) -> tuple[str, bytes]:
    """A bare file name given on the command line: the first of the configuration directories
    (below the root) that has it, and its content. FileNotFoundError if none has it; an error
    other than "not there" on the way stops the search (OSError naming the bare name); an
    error reading the file once found names its path (ReadError)."""
    for d in dirs:
        try:
            with chase(d, root_fd=root_fd) as directory:
                path = _in(directory.path, name)
            found = chase(path, root_fd=root_fd)
        except FileNotFoundError:
            continue
        with found:
            shown = join_root(root, path)
            try:
                return shown, ops.read_opath(found.fd, found.st)
            except OSError as e:
                raise ReadError(shown, e) from None
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


class ReadError(Exception):
    """A file was found but could not be read: ``name`` is its path as messages name it."""

    def __init__(self, name: str, error: OSError) -> None:
        super().__init__(name)
        self.name = name
        self.error = error


def cat_config(root_fd: int, files: list[ConfFile], *, tldr: bool,
               report: Reporter | None = None) -> tuple[str, bool]:
    """What --cat-config / --tldr print (systemd's cat_files()), and False if a file could not
    be found again (systemd logs it, prints the others and exits 1).

    A file that is a symlink is headed "# path -> target", the target named as the kernel names
    the root (a root given through a symlink shows its real path there, as in systemd).
    """
    from freshroot.tmpfiles.lines import tldr_lines

    root_real = ops.real_path_fd(root_fd).rstrip("/")
    out: list[str] = []
    ok = True
    for f in files:
        try:
            found = chase(f.resolved, root_fd=root_fd)
        except OSError as e:
            if report is not None:
                report(Message(Level.ERR, f"Failed to chase '{f.path}': {e.strerror}"))
            ok = False
            continue
        with found:
            if out:
                out.append("\n")
            if stat.S_ISREG(found.st.st_mode) and found.st.st_size == 0:
                out.append(f"# {f.path} is a mask.\n")
                continue
            target = root_real + found.path
            out.append(f"# {f.path} -> {target}\n" if target != f.path else f"# {f.path}\n")
            try:
                data = ops.read_opath(found.fd, found.st)
            except OSError as e:
                out.append(f"# Failed to read {f.path}: {e.strerror}\n")
                continue
        if tldr:
            out.extend(f"{line}\n" for line in tldr_lines(data))
        else:
            text = data.decode("utf-8", "surrogateescape")
            out.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(out), ok
