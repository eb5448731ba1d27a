"""Generations: each applied declaration, kept in storage with a number, for ``rollback``.

Where: ``<storage>/.freshroot/generations/`` below the target root, ``<storage>`` being the
first storage the declaration persists to (``[persist."/persist"]``), or
``/var/lib/freshroot/generations`` when it declares none (then they last only as long as
the root does). Not the state store in /run/freshroot (:mod:`freshroot.plan.journal`): that
is volatile, on purpose, and a rollback must work after a reboot.

::

    generations/
      current            the number of the generation the root is at ("7\\n")
      7/meta.json        number, time, plan id, freshroot version, digest, files, ok, confirm
      7/files/00-freshroot.toml   the bytes that were applied, in merge order

A generation is written only under the apply lock, into a temporary directory renamed to its
number (a crash leaves no half generation), durably (fsync: it is what a rollback stands
on). Everything is read without following a symlink and checked on the fd as the state
store's files are (:func:`freshroot.plan.statedir.check_fd`): root's own, 0700/0600.

An apply whose declaration has the same digest as the current generation's makes no new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from freshroot import __version__
from freshroot.config.load import STDIN, Loaded
from freshroot.config.table import Table
from freshroot.digest import sha256
from freshroot.errors import OperationError
from freshroot.fs import ops
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.plan import statedir
from freshroot.rootpaths import on_host

SUBDIR = ".freshroot/generations"
FALLBACK = "/var/lib/freshroot/generations"
META = "meta.json"
FILES = "files"
CURRENT = "current"
MAX_META = 1 << 20


@dataclass(frozen=True)
class GenFile:
    """One declaration file kept in a generation."""
    name: str  # the copy's name in files/ ("00-freshroot.toml")
    path: str  # where it was read: below the root (in_root) or on the host (--config), "-" for stdin
    in_root: bool
    sha256: str


@dataclass(frozen=True)
class Generation:
    """One applied declaration, kept for rollback."""
    number: int
    time: float
    plan: str
    version: str
    digest: str
    files: tuple[GenFile, ...]
    ok: bool
    # None, or {"state": pending|confirmed|rolled-back|superseded, "deadline": t, "timer": {...}}
    confirm: dict[str, Any] | None = None
    origin: str = "apply"  # "apply", or "rollback from N" for a generation a rollback applied

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "time": self.time, "plan": self.plan, "version": self.version,
                "digest": self.digest, "ok": self.ok, "confirm": self.confirm, "origin": self.origin,
                "files": [{"name": f.name, "path": f.path, "in_root": f.in_root, "sha256": f.sha256}
                          for f in self.files]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Generation:
        files = tuple(GenFile(str(f["name"]), str(f["path"]), bool(f["in_root"]), str(f["sha256"]))
                      for f in data.get("files", ()))
        confirm = data.get("confirm")
        return cls(int(data["number"]), float(data["time"]), str(data.get("plan", "")), str(data.get("version", "")),
                   str(data["digest"]), files, bool(data.get("ok", True)),
                   confirm if isinstance(confirm, dict) else None, str(data.get("origin", "apply")))

    @property
    def confirm_state(self) -> str | None:
        return None if self.confirm is None else str(self.confirm.get("state"))


def digest(contents: Sequence[bytes]) -> str:
    """The declaration's identity: its files' bytes in merge order (not their names: the same
    bytes applied from a stored copy are the same generation)."""
    h = sha256()
    for raw in contents:
        h.update(sha256(raw).digest())
    return h.hexdigest()


def storage_of(declaration: Table) -> str | None:
    """The first storage the declaration persists to, or None."""
    if "persist" not in declaration:
        return None
    from freshroot.persist.parse import parse

    persistence = parse(declaration, None, skip=lambda error: None)
    return persistence.storages[0].path if persistence.storages else None


def directory_for(storage: str | None) -> str:
    return f"{storage.rstrip('/')}/{SUBDIR}" if storage else FALLBACK


def _file_name(index: int, path: str) -> str:
    base = "stdin.toml" if path == STDIN else os.path.basename(path) or "declaration.toml"
    return f"{index:02d}-{base}"


class Store:
    """The generations directory of one root, open (an O_PATH fd of it, or none yet)."""

    def __init__(self, root_fd: int, root: str, path: str) -> None:
        self.root_fd = root_fd
        self.root = root
        self.path = path  # below the root
        self._fd = -1

    # --- opening ----------------------------------------------------------------------

    def _dir(self, create: bool) -> int | None:
        if self._fd >= 0:
            return self._fd
        if create:
            with ops.mkdir_parents(self.root_fd, self.path, 0o700) as found:
                self._fd = found.detach()
        else:
            try:
                with chase(self.path, root_fd=self.root_fd, flags=ChaseFlags.SAFE) as found:
                    if not stat.S_ISDIR(found.st.st_mode):
                        return None
                    self._fd = found.detach()
            except (FileNotFoundError, NotADirectoryError):
                return None
        st = os.fstat(self._fd)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o022:
            raise statedir.StateRefusedError(
                f"{self.path}: owned by uid {st.st_uid} or writable by others; refusing to trust "
                "its generations", hint="only root may own and write it; check who made it")
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------

    def _read(self, dir_fd: int, name: str) -> bytes | None:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        try:
            statedir.check_fd(fd, f"{self.path}/{name}")
            return ops.read_fd(fd, MAX_META)
        finally:
            os.close(fd)

    def numbers(self) -> list[int]:
        dir_fd = self._dir(create=False)
        if dir_fd is None:
            return []
        return sorted(int(n) for n in ops.listdir_fd(dir_fd) if n.isdigit())

    def get(self, number: int) -> Generation | None:
        dir_fd = self._dir(create=False)
        if dir_fd is None:
            return None
        raw = self._read(dir_fd, f"{number}/{META}") if str(number) in ops.listdir_fd(dir_fd) else None
        if raw is None:
            return None
        try:
            return Generation.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as e:
            raise OperationError(f"{self.path}/{number}/{META}: unreadable ({e})") from None

    def all(self) -> list[Generation]:
        return [g for g in (self.get(n) for n in self.numbers()) if g is not None]

    def current(self) -> int | None:
        dir_fd = self._dir(create=False)
        if dir_fd is None:
            return None
        raw = self._read(dir_fd, CURRENT)
        text = raw.decode("ascii", "replace").strip() if raw else ""
        return int(text) if text.isdigit() else None

    def previous(self, number: int | None = None) -> Generation | None:
        """The generation before ``number`` (default: the current one): what rollback goes to."""
        below = self.current() if number is None else number
        if below is None:
            return None
        candidates = [n for n in self.numbers() if n < below]
        return self.get(candidates[-1]) if candidates else None

    def contents(self, generation: Generation) -> list[bytes]:
        dir_fd = self._dir(create=False)
        assert dir_fd is not None
        out: list[bytes] = []
        for f in generation.files:
            raw = self._read(dir_fd, f"{generation.number}/{FILES}/{f.name}")
            if raw is None or sha256(raw).hexdigest() != f.sha256:
                raise OperationError(f"{self.path}/{generation.number}/{FILES}/{f.name}: missing or "
                                     "changed since it was kept; this generation cannot be restored")
            out.append(raw)
        return out

    def files_on_host(self, generation: Generation) -> list[str]:
        """The kept copies as host paths (for ``--config``): the root's path + the store's."""
        base = on_host(f"{self.path}/{generation.number}/{FILES}", self.root)
        return [f"{base}/{f.name}" for f in generation.files]

    # --- writing (under the apply lock) -----------------------------------------------

    def set_current(self, number: int) -> None:
        dir_fd = self._dir(create=True)
        assert dir_fd is not None
        replace_at(dir_fd, CURRENT, f"{number}\n".encode(), mode=0o600)

    def update(self, generation: Generation) -> None:
        dir_fd = self._dir(create=True)
        assert dir_fd is not None
        with chase(str(generation.number), root_fd=dir_fd, flags=ChaseFlags.SAFE) as found:
            replace_at(found.fd, META, _meta_bytes(generation), mode=0o600)

    def add(self, loaded: Loaded, plan: str, *, ok: bool, origin: str = "apply",
            confirm: dict[str, Any] | None = None) -> Generation:
        """Keep ``loaded`` as the next generation and make it current."""
        dir_fd = self._dir(create=True)
        assert dir_fd is not None
        number = (self.numbers() or [0])[-1] + 1
        files = tuple(GenFile(_file_name(i, s.path), s.path, s.in_root, sha256(raw).hexdigest())
                      for i, (s, raw) in enumerate(loaded.contents))
        generation = Generation(number, time.time(), plan, __version__,
                                digest([raw for _, raw in loaded.contents]), files, ok, confirm, origin)
        temp = f".new-{number}-{os.getpid()}"
        _remove_tree(dir_fd, temp)
        os.mkdir(temp, 0o700, dir_fd=dir_fd)
        with chase(temp, root_fd=dir_fd, flags=ChaseFlags.SAFE) as gen_dir:
            os.mkdir(FILES, 0o700, dir_fd=gen_dir.fd)
            with chase(FILES, root_fd=gen_dir.fd, flags=ChaseFlags.SAFE) as files_dir:
                for f, (_, raw) in zip(files, loaded.contents, strict=True):
                    replace_at(files_dir.fd, f.name, raw, mode=0o600)
            replace_at(gen_dir.fd, META, _meta_bytes(generation), mode=0o600)
        os.rename(temp, str(number), src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        _fsync_dir(dir_fd)
        self.set_current(number)
        return generation


def _meta_bytes(generation: Generation) -> bytes:
    return (json.dumps(generation.to_json(), indent=1, sort_keys=True) + "\n").encode()


def _fsync_dir(dir_fd: int) -> None:
    fd = ops.reopen(dir_fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(dir_fd: int, name: str) -> None:
    """A leftover temporary generation of a crashed apply: two levels, our own files."""
    with contextlib.suppress(FileNotFoundError):
        with chase(name, root_fd=dir_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
            if not stat.S_ISDIR(found.st.st_mode):
                os.unlink(name, dir_fd=dir_fd)
                return
            sub = ops.reopen(found.fd, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for entry in os.listdir(sub):
                    if entry == FILES:
                        inner = os.open(FILES, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=sub)
                        try:
                            for leaf in os.listdir(inner):
                                os.unlink(leaf, dir_fd=inner)
                        finally:
                            os.close(inner)
                        os.rmdir(FILES, dir_fd=sub)
                    else:
                        os.unlink(entry, dir_fd=sub)
            finally:
                os.close(sub)
        os.rmdir(name, dir_fd=dir_fd)


@dataclass
class Recorded:
    """What an apply did to the generations: for its report."""

    generation: Generation | None = None
    new: bool = False
    superseded: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        g = self.generation
        return {"number": g.number if g else None, "new": self.new, "digest": g.digest if g else None,
                "confirm": g.confirm_state if g else None}


def record(store: Store, loaded: Loaded, plan: str, *, ok: bool) -> Recorded:
    """After an apply (under its lock): a new generation when the declaration differs from the
    current one's; the current one otherwise (its ``ok`` updated)."""
    contents = [raw for _, raw in loaded.contents]
    current_number = store.current()
    current = store.get(current_number) if current_number is not None else None
    if current is not None and current.digest == digest(contents):
        if current.ok != ok:
            current = replace(current, ok=ok)
            store.update(current)
        return Recorded(current, new=False)
    result = Recorded(store.add(loaded, plan, ok=ok), new=True)
    if current is not None and current.confirm_state == "pending":
        result.superseded.append(current.number)
    return result


def iter_pending(store: Store) -> Iterator[Generation]:
    for g in store.all():
        if g.confirm_state == "pending":
            yield g
