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

from freshroot.errors import OperationError, os_error_message
from freshroot.image.closure import Resolver
from freshroot.image.model import PortableImage

# The directories the portable-services spec expects to mount over, and the empty files
# the host's versions are bind-mounted onto.
SCAFFOLD_DIRS = ("proc", "sys", "dev", "run", "tmp", "var/tmp", "var/lib", "var/cache", "var/log",
                 "etc/systemd/system", "usr/lib")
SCAFFOLD_FILES = ("etc/resolv.conf", "etc/machine-id")
UNIT_DIR = "etc/systemd/system"
MAX_SYMLINKS = 40  # as the kernel's ELOOP limit


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


def read_os_release(path: str = "/etc/os-release") -> dict[str, str]:
    """A simple reader for os-release(5) (KEY=value, optionally quoted)."""
    import shlex

    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError:
        return out
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(value, posix=True)
        except ValueError:
            continue
        out[key.strip()] = words[0] if words else ""
    return out


class Stage:
    """A staging root being filled. ``root_fd`` is an O_DIRECTORY fd on the staging dir."""

    def __init__(self, root_fd: int, resolver: Resolver | None = None) -> None:
        self.root_fd = root_fd
        self.resolver = resolver or Resolver()
        self.copied: dict[str, None] = {}  # host paths of regular files copied, in order
        self._done: set[str] = set()

    # --- writing inside the stage ------------------------------------------------------

    def _dir_fd(self, rel: str, mode: int = 0o755) -> int:
        """An fd on directory ``rel`` of the stage, creating missing parts; never follows symlinks."""
        fd = os.dup(self.root_fd)
        try:
            for part in [p for p in rel.split("/") if p]:
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                    os.chmod(part, mode, dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    pass
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = nfd
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
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                         dir_fd=dfd)
            try:
                os.write(fd, data)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        finally:
            os.close(dfd)

    def symlink(self, rel: str, target: str) -> None:
        parent, name = os.path.split(rel.strip("/"))
        dfd = self._dir_fd(parent)
        try:
            try:
                os.symlink(target, name, dir_fd=dfd)
            except FileExistsError:
                if os.readlink(name, dir_fd=dfd) != target:
                    raise OperationError(f"/{rel}: two different symlinks declared at the same path") from None
        finally:
            os.close(dfd)

    def _copy_file(self, host: str, rel: str, st: os.stat_result) -> None:
        parent, name = os.path.split(rel)
        dfd = self._dir_fd(parent)
        try:
            src = os.open(host, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                              dir_fd=dfd)
                try:
                    remaining = st.st_size
                    while remaining > 0:
                        n = os.copy_file_range(src, dst, min(remaining, 1 << 30))
                        if n == 0:
                            break
                        remaining -= n
                    # Permission bits as on the host; owner and times are set by the builder.
                    os.fchmod(dst, stat.S_IMODE(st.st_mode))
                finally:
                    os.close(dst)
            finally:
                os.close(src)
        finally:
            os.close(dfd)

    # --- copying from the host -----------------------------------------------------------

    def add_host_path(self, path: str, *, recursive: bool = True) -> str:
        """Copy host ``path`` to the same path in the stage, reproducing symlinks on the way.

        Returns the real host path it ended on. Directories are copied whole when ``recursive``.
        """
        try:
            return self._add(path, recursive=recursive)
        except OSError as e:
            raise OperationError(f"cannot copy {path} into the image: {os_error_message(e)}") from e

    def _add(self, path: str, *, recursive: bool) -> str:
        todo = [p for p in path.split("/") if p]
        todo.reverse()
        cur: list[str] = []
        links = 0
        while todo:
            part = todo.pop()
            if part == ".":
                continue
            if part == "..":
                if cur:
                    cur.pop()
                continue
            rel = "/".join([*cur, part])
            host = "/" + rel
            st = os.lstat(host)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise OperationError(f"{path}: too many levels of symbolic links")
                target = os.readlink(host)
                self.symlink(rel, target)
                parts = [p for p in target.split("/") if p]
                if target.startswith("/"):
                    cur = []
                todo.extend(reversed(parts))
                continue
            if todo:  # an intermediate directory
                self.mkdir(rel, stat.S_IMODE(st.st_mode))
                cur.append(part)
                continue
            self._add_final(host, rel, st, recursive=recursive)
            return host
        self.mkdir("", 0o755)
        return "/"

    def _add_final(self, host: str, rel: str, st: os.stat_result, *, recursive: bool) -> None:
        if host in self._done:
            return
        self._done.add(host)
        if stat.S_ISREG(st.st_mode):
            self._copy_file(host, rel, st)
            self.copied[host] = None
        elif stat.S_ISDIR(st.st_mode):
            self.mkdir(rel, stat.S_IMODE(st.st_mode))
            if recursive:
                self._copy_tree(host, rel)
        else:
            raise OperationError(f"{host}: only regular files, directories and symlinks can go into an image")

    def _copy_tree(self, host: str, rel: str) -> None:
        with os.scandir(host) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            child_host, child_rel = f"{host}/{entry.name}", f"{rel}/{entry.name}"
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(child_host)
                self.symlink(child_rel, target)
                # A link to a file elsewhere brings the file along (a link to a directory does not:
                # that could pull in half the host).
                resolved = os.path.join(host, target) if not target.startswith("/") else target
                if os.path.isfile(resolved) and not os.path.realpath(resolved).startswith(host + "/"):
                    self._add(resolved, recursive=False)
            elif stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                self._add_final(child_host, child_rel, st, recursive=True)
            # sockets, fifos and devices in a content tree are skipped: they are runtime objects.

    def add_closure(self) -> tuple[str, ...]:
        """Copy the shared-library closure of every ELF file copied so far. Returns unresolved names."""
        closure = self.resolver.closure(list(self.copied))
        for lib in closure.files:
            self.add_host_path(lib, recursive=False)
        return tuple(f"{m.needed} (needed by {m.by})" for m in closure.missing)


def stage_image(image: PortableImage, root_fd: int, *, host_os_release: dict[str, str] | None = None,
                resolver: Resolver | None = None) -> Stage:
    """Fill the empty staging directory ``root_fd`` with everything ``image`` declares."""
    stage = Stage(root_fd, resolver)
    for d in SCAFFOLD_DIRS:
        stage.mkdir(d)
    for name in SCAFFOLD_FILES:
        stage.write(name, b"")
    host = read_os_release() if host_os_release is None else host_os_release
    stage.write("usr/lib/os-release", os_release_text(image, host).encode())
    stage.symlink("etc/os-release", "../usr/lib/os-release")
    for unit in image.units:
        try:
            with open(unit.source, "rb") as f:
                data = f.read()
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
        stage.symlink(link.symlink.lstrip("/"), link.object)
    return stage

