"""The machine's identity on a root wiped at every boot: /etc/machine-id and the SSH host keys.

``machine-id`` (when the declaration persists /etc/machine-id, e.g. the ``machine-id``
preset): the id lives in storage, and the root's /etc/machine-id is *written* with it, not
bound over. systemd reads /etc/machine-id before any unit runs and, when it found none,
mounts a transient one there that systemd-machine-id-commit.service later writes to disk;
that service fails on a file bound from another file system ("not on a temporary file
system"). So, as impermanence ended up doing: storage keeps the id; the root gets a plain
file with the same content; a transient mount is replaced by it (commit then has nothing to
do and is skipped by its condition). Which id wins:

| root's /etc/machine-id                     | storage missing        | storage holds an id        |
|--------------------------------------------|------------------------|----------------------------|
| missing, empty, "uninitialized", transient | a new id, in both      | storage's, written to root |
| an id, the image's (fresh root)            | root's, into storage   | storage's, written to root |
| an id written since boot / a kept root     | root's, into storage   | same: nothing; else refused|

``freshroot install --machine-id ID`` writes the id into storage and into the root's
/etc/machine-id before the first boot, so even PID 1 and journald start with the final id.

``ssh-host-keys``: for each persisted ``/etc/ssh/ssh_host_TYPE_key`` that neither storage nor
the root has, ``ssh-keygen`` writes a new key straight into storage before persistence binds
it, so the first boot already has the key every later boot has (sshd's own key generation
then finds it). ``install --host-keys DIR`` copies existing keys into storage instead.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from freshroot.config.table import Table
from freshroot.errors import ConfigError, OperationError, UnsafePathError
from freshroot.fs import ops
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist.model import Entry, Kind, Persistence, is_below
from freshroot.plan.action import Action, Context, Step
from freshroot.rootpaths import on_host

TYPE_CHECKING = False
if TYPE_CHECKING:  # hostkeys.py is install's alone: the boot's activation never imports it
    from freshroot.activation.hostkeys import HostKey

MACHINE_ID = "/etc/machine-id"
HOST_KEY = re.compile(r"^/etc/ssh/ssh_host_(rsa|ecdsa|ed25519|dsa)_key$")
SSH_KEYGEN = ("/usr/bin/ssh-keygen", "/bin/ssh-keygen")
STEP_MACHINE_ID = "machine-id"
STEP_HOST_KEYS = "ssh-host-keys"
HANDLED = frozenset({MACHINE_ID})  # entries these steps own; the persist step leaves them alone


def valid_id(text: str) -> bool:
    """A machine id as machine-id(5) spells it: 32 lowercase hex digits, and not all zeros
    (systemd reads the null id as no id)."""
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text) and text != "0" * 32


def new_id() -> str:
    """A random v4 UUID without dashes, as systemd-machine-id-setup writes it."""
    b = bytearray(os.urandom(16))  # what secrets.token_bytes is, without importing random at boot
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


# The last declaration parsed here and its result: the machine-id and host-key steps read
# it five times per plan, and a persist section of 100 paths costs milliseconds to parse
# (tens under emulation, at every boot). Kept by identity, so the Table cannot be another.
_parsed: list[tuple[Table, Persistence]] = []


def _persistence(declaration: Table) -> Persistence:
    if _parsed and _parsed[0][0] is declaration:
        return _parsed[0][1]
    from freshroot.persist.parse import parse

    # Paths only: owners are not needed here. A bad entry is the persist step's to report
    # (at boot it skips it and applies the others; apply refuses the declaration first).
    found = parse(declaration, None, skip=lambda error: None)
    _parsed[:] = [(declaration, found)]
    return found


def _file_entries(declaration: Table) -> list[Entry]:
    if "persist" not in declaration:
        return []
    return [e for e in _persistence(declaration).entries() if e.kind is Kind.FILE]


def machine_id_entry(declaration: Table) -> Entry | None:
    return next((e for e in _file_entries(declaration) if e.path == MACHINE_ID), None)


def _read_small(root_fd: int, path: str) -> tuple[str | None, os.stat_result | None]:
    """(content stripped, stat) of a regular file, following a mount but not a symlink."""
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
            if not stat.S_ISREG(found.st.st_mode):
                return None, found.st
            fd = ops.reopen(found.fd, os.O_RDONLY | os.O_NONBLOCK)
            st = found.st
        try:
            return ops.read_fd(fd, 4096).decode("ascii", "replace").strip(), st
        finally:
            os.close(fd)
    except (FileNotFoundError, NotADirectoryError):
        return None, None


def _is_mount_point(root_fd: int, path: str) -> bool:
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.PARENT) as p:
            return ops.is_mount_point_at(p.fd, p.rest)
    except (OSError, UnsafePathError):
        return False


def write_file(root_fd: int, path: str, data: bytes, mode: int) -> None:
    parent, name = path.rsplit("/", 1)
    with ops.mkdir_parents(root_fd, parent or "/", 0o755) as d:
        replace_at(d.fd, name, data, mode=mode, uid=0, gid=0)


@dataclass(frozen=True)
class WriteMachineId(Action):
    """Write the machine id into storage (unmounting systemd's transient one first when it is mounted)."""
    path: str
    machine_id: str
    why: str
    unmount: bool = False  # systemd's transient id is mounted there

    def describe(self) -> str:
        first = "unmount the transient machine id, then " if self.unmount else ""
        return f"{first}write machine id {self.machine_id} to {self.path} ({self.why})"

    def record(self) -> Mapping[str, Any]:
        return {"op": "machine-id", "path": self.path}

    def apply(self, ctx: Context) -> None:
        if self.unmount:
            from freshroot.fs.mount import umount

            umount(on_host(self.path, ctx.root))
        write_file(ctx.root_fd, self.path, (self.machine_id + "\n").encode(), 0o444)


def _machine_id_actions(ctx: Context, e: Entry) -> list[Action]:
    from freshroot.persist.image import is_image_content

    stored, _ = _read_small(ctx.root_fd, e.source)
    have, st = _read_small(ctx.root_fd, MACHINE_ID)
    transient = st is not None and _is_mount_point(ctx.root_fd, MACHINE_ID)
    root_id = have if have is not None and valid_id(have) and not transient else None
    out: list[Action] = []
    if stored is None or not valid_id(stored):
        if stored:  # something that is not an id: never overwritten
            raise OperationError(f"{ctx.display(e.source)} holds no machine id; not replacing it",
                                 hint="remove it, or write the id (32 hex digits) there")
        if root_id is not None:
            stored, why = root_id, "the root's id, kept in storage"
        elif have is not None and transient and valid_id(have):
            stored, why = have, "this boot's transient id, kept in storage"
        else:
            stored, why = new_id(), "a new id"
        out.append(WriteMachineId(e.source, stored, why))
    if root_id == stored:
        return out
    if root_id is not None and not is_image_content(ctx, MACHINE_ID) and not out:
        raise OperationError(f"{ctx.display(MACHINE_ID)} ({root_id}) and {ctx.display(e.source)} ({stored}) "
                             "hold different machine ids; freshroot will not choose between them",
                             hint="keep one: remove the other, then apply again")
    out.append(WriteMachineId(MACHINE_ID, stored, "the id in storage", unmount=transient))
    return out


def machine_id_step(declaration: Table) -> list[Step]:
    if machine_id_entry(declaration) is None:
        return []

    def planner(ctx: Context) -> Iterable[Action]:
        from freshroot.persist.planner import storage_problem

        e = machine_id_entry(declaration)
        storage = next(s for s in _persistence(declaration).storages if s.path == e.storage) if e else None
        if e is None or storage is None or storage_problem(ctx, storage) is not None:
            return []  # the persist step says what is wrong with the storage
        return _machine_id_actions(ctx, e)

    return [Step(STEP_MACHINE_ID, planner, ("specialfs",), description="/etc/machine-id from storage",
                 location=declaration.location("persist"))]


# --- SSH host keys ------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateHostKey(Action):
    """Generate a missing SSH host key straight into storage, so the next boot has the same key."""
    source: str
    key_type: str

    def describe(self) -> str:
        return f"generate the SSH host key {self.source} ({self.key_type}) in storage"

    def record(self) -> Mapping[str, Any]:
        return {"op": "host-key", "path": self.source}

    def apply(self, ctx: Context) -> None:
        from freshroot.run import run

        keygen = next((p for p in SSH_KEYGEN if os.path.exists(p)), None)
        if keygen is None:
            raise OperationError("ssh-keygen is not installed: cannot generate the SSH host keys")
        parent = self.source.rsplit("/", 1)[0]
        with ops.mkdir_parents(ctx.root_fd, parent, 0o755):
            pass
        run([keygen, "-q", "-t", self.key_type, "-N", "", "-C", "", "-f", on_host(self.source, ctx.root)])


def _exists(root_fd: int, path: str) -> bool:
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW):
            return True
    except (FileNotFoundError, NotADirectoryError):
        return False


def host_key_step(declaration: Table) -> list[Step]:
    keys = [e for e in _file_entries(declaration) if HOST_KEY.match(e.path)]
    if not keys:
        return []

    def planner(ctx: Context) -> Iterable[Action]:
        from freshroot.persist.planner import storage_problem

        p = _persistence(declaration)
        usable = {s.path for s in p.storages if storage_problem(ctx, s) is None}
        out: list[Action] = []
        for e in keys:
            match = HOST_KEY.match(e.path)
            assert match is not None
            if e.storage in usable and not _exists(ctx.root_fd, e.source) and not _exists(ctx.root_fd, e.path):
                out.append(GenerateHostKey(e.source, match.group(1)))
        return out

    return [Step(STEP_HOST_KEYS, planner, ("specialfs",), description="SSH host keys generated into storage",
                 location=declaration.location("persist"))]


def identity_steps(declaration: Table) -> list[Step]:
    return [*machine_id_step(declaration), *host_key_step(declaration)]


# --- install ------------------------------------------------------------------------------


def _persisted_at(declaration: Table, path: str) -> str | None:
    """Where ``path`` lives in storage: its own file entry's source, else that of the deepest
    persisted directory it is in (``directories = ["/etc/ssh"]`` keeps the keys too)."""
    if "persist" not in declaration:
        return None
    entries = _persistence(declaration).entries()
    exact = next((e for e in entries if e.kind is Kind.FILE and e.path == path), None)
    if exact is not None:
        return exact.source
    around = [e for e in entries if e.kind is Kind.DIRECTORY and is_below(path, e.path)]
    if not around:
        return None
    deepest = max(around, key=lambda e: len(e.path))
    return deepest.storage.rstrip("/") + path


@dataclass(frozen=True, slots=True)
class HostKeyTarget:
    """Where one `--host-keys` file goes in storage, and whether storage holds that very key already."""
    key: HostKey
    source: str  # its path in storage
    present: bool  # storage holds this very key already


def install_checks(root_fd: int, declaration: Table, *, machine_id: str | None, host_keys: Sequence[HostKey],
                   live: bool) -> list[HostKeyTarget]:
    """What ``install --machine-id/--host-keys`` asks, checked before install changes anything:
    the id and every key must be persisted (a key that is not would be gone at the first boot,
    and the host would answer with another), and storage must not hold another id or another
    key already (never replaced). Where each key goes in storage. ``live``: the target is the
    running system (its machine id is not install's to change)."""
    where = declaration.location("persist") if "persist" in declaration else None
    e = machine_id_entry(declaration)
    if machine_id is not None and e is None:
        raise ConfigError("--machine-id: the declaration does not persist /etc/machine-id", location=where,
                          hint='add include = ["machine-id"] to a storage')
    if e is not None:
        stored, _ = _read_small(root_fd, e.source)
        if stored is not None and not valid_id(stored):  # as at boot: never overwritten, never copied
            raise OperationError(f"{e.source} holds no machine id; not replacing it",
                                 hint="remove it, or write the id (32 lowercase hex digits) there")
        if stored is not None and machine_id is not None and stored != machine_id:
            raise OperationError(f"{e.source} already holds machine id {stored!r}, not {machine_id}",
                                 hint=f"remove {e.source} to give the machine another id")
        have, _ = _read_small(root_fd, MACHINE_ID)
        if machine_id is not None and live and have and valid_id(have) and have != machine_id:
            raise OperationError(f"--machine-id {machine_id}: this running machine's id is {have}; install does "
                                 "not change the id of the system it runs on",
                                 hint="give its id, or install onto a new root (--root /mnt)")
    sources = {k.name: _persisted_at(declaration, f"/etc/ssh/{k.name}") for k in host_keys}
    missing = [name for name, source in sources.items() if source is None]
    if missing:
        raise ConfigError("--host-keys: the declaration does not persist " +
                          ", ".join(f"/etc/ssh/{n}" for n in missing) + "; the keys would be gone at the first boot",
                          location=where,
                          hint='persist them (include = ["ssh-host-keys"] in a storage keeps the rsa, ecdsa and '
                               'ed25519 keys and their .pub files) or take them out of the directory')
    out: list[HostKeyTarget] = []
    for key in host_keys:
        source = sources[key.name]
        assert source is not None
        try:
            with chase(source, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
                same = stat.S_ISREG(found.st.st_mode) and found.st.st_size == len(key.data) and \
                    ops.read_opath(found.fd, found.st, len(key.data) + 1) == key.data
        except (FileNotFoundError, NotADirectoryError):
            out.append(HostKeyTarget(key, source, present=False))
            continue
        if not same:
            raise OperationError(f"{source} already holds another key than --host-keys' {key.name}; "
                                 "not replacing it", hint=f"remove {source} to install this key")
        out.append(HostKeyTarget(key, source, present=True))
    return out


def install_identity(root_fd: int, declaration: Table, *, machine_id: str | None,
                     host_keys: Sequence[HostKeyTarget] = (), source_fd: int | None = None) -> list[str]:
    """``install``, after :func:`install_checks`: the machine id (given, the root's, or new)
    into storage and into the root's empty /etc/machine-id; the host keys read from
    ``--host-keys`` (hostkeys.py) into storage, private keys 0600 and public ones 0644, root's.
    Nothing that exists is replaced. ``source_fd``: the root whose id counts as "the root's"
    (--root, when ``root_fd`` is an --extra-files tree)."""
    done: list[str] = []
    e = machine_id_entry(declaration)
    if e is not None:
        stored, _ = _read_small(root_fd, e.source)
        have, _ = _read_small(root_fd, MACHINE_ID)
        if source_fd is not None and (not have or not valid_id(have)):
            have, _ = _read_small(source_fd, MACHINE_ID)
        if stored is None:
            stored = machine_id or (have if have and valid_id(have) else new_id())
            write_file(root_fd, e.source, (stored + "\n").encode(), 0o444)
            done.append(f"machine id {stored} -> {e.source}")
        # The id given wins over the one a bootstrapper left (debootstrap's systemd postinst
        # writes one): the first boot's PID 1 reads it, and the machine-id step would refuse
        # two different ids.
        if not have or not valid_id(have) or (machine_id is not None and have != stored):
            write_file(root_fd, MACHINE_ID, (stored + "\n").encode(), 0o444)
            done.append(f"machine id {stored} -> {MACHINE_ID}")
    for target in host_keys:
        if target.present:
            done.append(f"kept {target.source} (the same key)")
            continue
        write_file(root_fd, target.source, target.key.data, target.key.mode)
        done.append(f"host key {target.key.name} -> {target.source}")
    return done
