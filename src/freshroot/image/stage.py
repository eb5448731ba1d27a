"""The staged root tree of a portable image: scaffold, os-release, units, contents, closure.

The staging directory is a fresh private directory (mode 0700) that freshroot created; all
writes go below it through a directory fd with dir_fd= calls, never through paths a user
could have planted. Host files are copied to the same path in the image, and every
symlink met on the way (/lib -> usr/lib on merged-/usr systems, libz.so.1 ->
libz.so.1.2.13) is reproduced, so the image resolves paths exactly as the host does.
Ownership and timestamps are not preserved here: the image builder sets them all (root,
SOURCE_DATE_EPOCH), which is what makes two builds byte-identical.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from freshroot.errors import OperationError, os_error_message
from freshroot.fs import ops
from freshroot.fs.chase import chase
from freshroot.fs.copy import copy_data
from freshroot.fs.walk import DirStack
from freshroot.image.closure import Resolver, read_regular
from freshroot.image.model import PortableImage

# The directories the portable-services spec expects to mount over, and the empty files
# the host's versions are bind-mounted onto.
SCAFFOLD_DIRS = ("proc", "sys", "dev", "run", "tmp", "var/tmp", "var/lib", "var/cache", "var/log",
                 "etc/systemd/system", "usr/lib")
SCAFFOLD_FILES = ("etc/resolv.conf", "etc/machine-id")
UNIT_DIR = "etc/systemd/system"


def _quote_os_release(value: str) -> str:
    """os-release(5) value syntax: bare when safe, else double quotes with \\ escapes."""
    if value and all(c.isalnum() or c in "._-+:/@,=" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return f'"{escaped}"'


def os_release_text(image: PortableImage, host: dict[str, str]) -> str:
    """The image's os-release: defaults from the declaration and host, then explicit settings."""
    fields: dict[str, str] = {}
    # ID/VERSION_ID describe where the binaries came from: the host distribution.
    for key in ("ID", "VERSION_ID"):
        if key in host:
            fields[key] = host[key]
    fields["PRETTY_NAME"] = image.description or image.name
    fields["IMAGE_ID"] = image.name
    fields["IMAGE_VERSION"] = image.version
    fields["PORTABLE_ID"] = image.name
    if image.description:
        fields["PORTABLE_PRETTY_NAME"] = image.description
    if image.homepage:
        fields["HOME_URL"] = image.homepage
    fields.update(image.os_release)
    # Without PORTABLE_PREFIXES systemd-dissect does not call it a portable service image.
    fields["PORTABLE_PREFIXES"] = " ".join(image.prefixes)
    return "".join(f"{k}={_quote_os_release(v)}\n" for k, v in fields.items())


def _host_os_release(root_fd: int) -> dict[str, str]:
    """os-release of the root files come from: /etc/os-release, else /usr/lib/os-release."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with chase(path, root_fd=root_fd) as found:
                return parse_os_release(read_regular(found).decode("utf-8", "surrogateescape"))
        except OSError:
            continue
    return {}


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): KEY=value lines; values in shell quoting, as systemd's parse_env_file reads them.

    Unquoted, a backslash escapes any character; in double quotes only a backslash before one of
    the four characters backslash, double quote, dollar and backtick; in single quotes none. A line
    whose quotes do not close is skipped.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        parsed = _shell_word(value.strip())
        if parsed is not None:
            out[key.strip()] = parsed
    return out


def _shell_word(value: str) -> str | None:
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(value):
        c = value[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                out.append(c)
        elif c == "\\" and i + 1 < len(value) and (not quote or value[i + 1] in '"\\$`'):
            i += 1
            out.append(value[i])
        elif quote == '"':
            if c == '"':
                quote = ""
            else:
                out.append(c)
        elif c in "'\"":
            quote = c
        else:
            out.append(c)
        i += 1
    return None if quote else "".join(out)


class Stage:
    """A staging root being filled from the host.

    ``root_fd`` is an fd on the (empty, private) staging directory, ``host_fd`` on the root
    files are taken from. Both are only ever used through freshroot.fs: no path string is
    re-resolved, and symlinks in either tree are read, reproduced, never followed blindly.
    """

    def __init__(self, root_fd: int, resolver: Resolver, host_fd: int,
                 tick: Callable[[int, int], None] | None = None) -> None:
        self.root_fd = root_fd
        self.tick = tick  # told (files, bytes) as host files are copied, for a progress line
        self.host_fd = host_fd
        self.resolver = resolver
        self.copied: dict[str, None] = {}  # host paths of regular files copied, in order
        self._done: set[str] = set()

    # --- writing inside the stage ------------------------------------------------------

    def _dir_fd(self, rel: str, mode: int = 0o755) -> int:
        """A directory fd on ``rel`` in the stage, made (with ``mode``) where missing.

        The stage mirrors the host walk, so ``rel`` never passes a symlink: one there is refused.
        """
        fd = os.dup(self.root_fd)
        try:
            for part in [p for p in rel.split("/") if p]:
                if ops.mkdir_at(fd, part, mode):
                    os.chmod(part, mode, dir_fd=fd, follow_symlinks=False)  # not narrowed by the umask
                child = ops.open_dir_at(fd, part)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def mkdir(self, rel: str, mode: int = 0o755) -> None:
        os.close(self._dir_fd(rel, mode))

    def write(self, rel: str, data: bytes, mode: int = 0o644) -> None:
        parent, name = os.path.split(rel.strip("/"))
        dfd = self._dir_fd(parent)
        try:
            fd = ops.create_at(dfd, name, mode)
            try:
                ops.write_all(fd, data)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        finally:
            os.close(dfd)

    def symlink(self, rel: str, target: str) -> None:
        parent, name = os.path.split(rel.strip("/"))
        dfd = self._dir_fd(parent)
        try:
            self._symlink_at(dfd, name, target, rel)
        finally:
            os.close(dfd)

    @staticmethod
    def _symlink_at(dfd: int, name: str, target: str, rel: str) -> None:
        try:
            ops.symlink_at(target, dfd, name)
        except FileExistsError:
            if os.readlink(name, dir_fd=dfd) != target:
                raise OperationError(f"/{rel}: two different things would be at the same path") from None

    def declared_symlink(self, path: str, target: str) -> None:
        """A symlink the declaration asks for; its parents resolve through links already staged."""
        parent, name = os.path.split(os.path.normpath("/" + path))
        with ops.mkdir_parents(self.root_fd, parent) as found:
            self._symlink_at(found.fd, name, target, path.lstrip("/"))

    # --- copying from the host -----------------------------------------------------------

    def add_host_path(self, path: str, *, recursive: bool = True) -> str:
        """Copy host ``path`` to the same path in the stage, reproducing symlinks on the way.

        Returns the symlink-free host path it ended on. Directories are copied whole when
        ``recursive``.
        """
        try:
            return self._add(path, recursive=recursive)
        except OSError as e:
            raise OperationError(f"cannot copy {path} into the image: {os_error_message(e)}") from e

    def _add(self, path: str, *, recursive: bool) -> str:
        """fs.chase's walk of the host path, reproducing in the stage every symlink it follows
        and every directory it enters (with the host's permission bits)."""
        def seen(at: str, st: os.stat_result, target: str | None) -> None:
            if target is not None:
                self.symlink(at.lstrip("/"), target)
            elif stat.S_ISDIR(st.st_mode):
                self.mkdir(at.lstrip("/"), stat.S_IMODE(st.st_mode))

        with chase(path, root_fd=self.host_fd, seen=seen) as found:
            if found.path == "/":
                self.mkdir("", 0o755)
                return "/"
            self._add_final(found.fd, found.st, found.path.lstrip("/"), recursive=recursive)
            return found.path

    def _add_final(self, fd: int, st: os.stat_result, rel: str, *, recursive: bool) -> None:
        """Stage what the O_PATH ``fd`` (host ``/rel``) is: a file, or a directory and what is in it."""
        host = "/" + rel
        if host in self._done:
            return
        self._done.add(host)
        if stat.S_ISREG(st.st_mode):
            self._copy_file(fd, rel, st)
            self.copied[host] = None
            if self.tick is not None:
                self.tick(1, 0)
        elif stat.S_ISDIR(st.st_mode):
            self.mkdir(rel, stat.S_IMODE(st.st_mode))
            if recursive:
                self._copy_tree(fd, rel)
        else:
            raise OperationError(f"{host}: only regular files, directories and symlinks can go into an image")

    def _copy_file(self, fd: int, rel: str, st: os.stat_result) -> None:
        parent, name = os.path.split(rel)
        dfd = self._dir_fd(parent)
        try:
            src = ops.reopen(fd, os.O_RDONLY)
            try:
                dst = ops.create_at(dfd, name, 0o600)
                try:
                    copy_data(src, dst, None if self.tick is None else self._tick_bytes)
                    # Permission bits as on the host; owner and times are set by the builder.
                    os.fchmod(dst, stat.S_IMODE(st.st_mode))
                finally:
                    os.close(dst)
            finally:
                os.close(src)
        finally:
            os.close(dfd)

    def _tick_bytes(self, n: int) -> None:
        if self.tick is not None:
            self.tick(0, n)

    def _copy_tree(self, dir_fd: int, rel: str) -> None:
        """Stage what is below the host directory ``dir_fd`` (host ``/rel``): depth first on an
        explicit stack, within freshroot.fs.walk's fd budget, whatever the depth."""
        top = ops.reopen(dir_fd, os.O_RDONLY | os.O_DIRECTORY)
        dirs = DirStack(top)
        frames = [(iter(sorted(os.listdir(top))), rel)]
        try:
            while frames:
                names, here = frames[-1]
                name = next(names, None)
                if name is None:
                    frames.pop()
                    if frames:
                        dirs.pop()
                    continue
                child_rel = f"{here}/{name}"
                child = ops.open_path_at(dirs.fd(), name)
                try:
                    st = os.fstat(child)
                    if stat.S_ISLNK(st.st_mode):
                        target = ops.readlink_fd(child)
                        self.symlink(child_rel, target)
                        # A link to a file outside the tree brings the file along (one to a
                        # directory does not: that could pull in half the host).
                        resolved = os.path.normpath(target if target.startswith("/") else f"/{here}/{target}")
                        if not resolved.startswith(f"/{here}/") and self._is_host_file(resolved):
                            self._add(resolved, recursive=False)
                    elif stat.S_ISREG(st.st_mode):
                        self._add_final(child, st, child_rel, recursive=False)
                    elif stat.S_ISDIR(st.st_mode) and "/" + child_rel not in self._done:
                        self._add_final(child, st, child_rel, recursive=False)  # made, not filled
                        dirs.push(name, st)
                        frames.append((iter(sorted(os.listdir(dirs.fd()))), child_rel))
                    # sockets, fifos and devices in a content tree are runtime objects: skipped.
                finally:
                    os.close(child)
        finally:
            dirs.close()
            os.close(top)

    def _is_host_file(self, path: str) -> bool:
        try:
            with chase(path, root_fd=self.host_fd) as found:
                return stat.S_ISREG(found.st.st_mode)
        except OSError:
            return False

    def add_closure(self) -> tuple[str, ...]:
        """Copy the shared-library closure of every ELF file copied so far. Returns unresolved names."""
        closure = self.resolver.closure(list(self.copied))
        for lib in closure.files:
            self.add_host_path(lib, recursive=False)
        return tuple(f"{m.needed} (needed by {m.by})" for m in closure.missing)


def stage_image(image: PortableImage, root_fd: int, resolver: Resolver,
                tick: Callable[[int, int], None] | None = None) -> Stage:
    """Fill the empty staging directory ``root_fd`` with everything ``image`` declares.

    Host files are taken from the root the ``resolver`` reads libraries from; ``tick`` is
    told (files, bytes) as they are copied.
    """
    stage = Stage(root_fd, resolver, resolver.root_fd, tick)
    for d in SCAFFOLD_DIRS:
        stage.mkdir(d)
    for name in SCAFFOLD_FILES:
        stage.write(name, b"")
    host = _host_os_release(resolver.root_fd)
    stage.write("usr/lib/os-release", os_release_text(image, host).encode())
    stage.symlink("etc/os-release", "../usr/lib/os-release")
    for unit in image.units:
        try:
            with chase(unit.source, root_fd=resolver.root_fd) as found:
                data = read_regular(found)
        except OSError as e:
            raise OperationError(f"cannot read unit file: {os_error_message(e)}", location=unit.location) from e
        stage.write(f"{UNIT_DIR}/{unit.name}", data)
    for content in image.contents:
        try:
            stage.add_host_path(content.path)
        except OperationError as e:
            raise OperationError(e.message, location=content.location) from e
    missing = stage.add_closure()
    if missing:
        raise OperationError(
            "shared libraries not found on this system: " + ", ".join(missing),
            location=image.location, hint="install them, or add the directories holding them to contents")
    for link in image.symlinks:
        try:
            stage.declared_symlink(link.symlink, link.object)
        except OSError as e:
            raise OperationError(f"cannot create symlink {link.symlink}: {os_error_message(e)}",
                                 location=link.location) from e
    return stage

