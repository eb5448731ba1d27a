"""``freshroot install --host-keys DIR``: the SSH host keys a machine is installed with, read
and checked before install changes anything.

DIR holds what ``ssh-keygen -A`` (or a fleet's key store) writes: ``ssh_host_TYPE_key`` and
``ssh_host_TYPE_key.pub`` for TYPE rsa, ecdsa, ed25519 or dsa, and optionally a host
certificate ``ssh_host_TYPE_key-cert.pub``. Everything in DIR is checked, and one problem
refuses the whole directory (exit 65, every problem named): a key that is skipped or half
copied would show up only at the first boot, as an unknown host key or an sshd that does not
start. So: only regular files (a symlink, FIFO, device or directory is refused, never
followed or opened for reading: each name is opened O_PATH|O_NOFOLLOW and fstat'ed, and read
through that fd); only those names; each private key with its .pub and each .pub with its
private key; a private key is an unencrypted OpenSSH or PEM private key (sshd cannot ask for
a passphrase) holding the type its name says; a .pub is one line whose key type matches the
name, and, for an OpenSSH private key, is that key's public half; at most 64 KiB a file (a
16384-bit RSA key is 13 KiB).

The keys are parsed as far as their wire format goes (RFC 4253 strings, OpenSSH's
PROTOCOL.key), with the standard library: no ssh-keygen is needed on the installing machine.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from freshroot.errors import ConfigError
from freshroot.fs import ops

# The key types of each name's TYPE, as the first field of a .pub spells them.
KEY_TYPES: dict[str, tuple[str, ...]] = {
    "rsa": ("ssh-rsa",),
    "ecdsa": ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"),
    "ed25519": ("ssh-ed25519",),
    "dsa": ("ssh-dss",),
}
NAME = re.compile(r"ssh_host_([a-z0-9]+)_key(\.pub|-cert\.pub)?")
LIMIT = 64 << 10
PRIVATE_MODE, PUBLIC_MODE = 0o600, 0o644
_OPENSSH_MAGIC = b"openssh-key-v1\0"
# PEM private keys by their armor: the TYPE each one holds (None: PKCS#8, any type).
_PEM: dict[str, str | None] = {"OPENSSH PRIVATE KEY": None, "RSA PRIVATE KEY": "rsa", "EC PRIVATE KEY": "ecdsa",
                               "DSA PRIVATE KEY": "dsa", "PRIVATE KEY": None}
ENCRYPTED = "is encrypted with a passphrase; sshd reads host keys without one (ssh-keygen -p -N '' -f FILE removes it)"
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
HINT = ("DIR holds only ssh_host_TYPE_key, ssh_host_TYPE_key.pub (and ssh_host_TYPE_key-cert.pub) files for "
        f"TYPE {', '.join(KEY_TYPES)}, as `ssh-keygen -A -f PREFIX` writes them into PREFIX/etc/ssh")


@dataclass(frozen=True, slots=True)
class HostKey:
    """One file of an `--host-keys` directory, checked: its name, its bytes and the mode it gets."""
    name: str  # its name in DIR and in /etc/ssh: ssh_host_ed25519_key
    data: bytes
    mode: int  # 0600 for a private key, 0644 for a public key or certificate

    @property
    def private(self) -> bool:
        return self.mode == PRIVATE_MODE


class _FileError(Exception):
    """One file's problem; collected so that every problem of DIR is reported at once."""


def _string(blob: bytes, pos: int) -> tuple[bytes, int]:
    """An SSH wire-format string (uint32 length, bytes) at ``pos``, and the position after it."""
    if pos + 4 > len(blob):
        raise _FileError("is cut short")
    size = int.from_bytes(blob[pos:pos + 4], "big")
    end = pos + 4 + size
    if end > len(blob):
        raise _FileError("is cut short")
    return blob[pos + 4:end], end


def _blob_type(blob: bytes) -> str:
    name, _ = _string(blob, 0)
    return name.decode("ascii", "replace")


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _FileError("is not valid base64") from None


def _text(data: bytes) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise _FileError("is not text (a key file is ASCII)") from None


def _private(data: bytes, key_type: str) -> bytes | None:
    """Check a private key; its public key blob when the file carries one (OpenSSH format)."""
    lines = [line.strip() for line in _text(data).strip().splitlines()]
    first = re.fullmatch(r"-----BEGIN ([A-Z0-9 ]+)-----", lines[0]) if lines else None
    if first is None:
        raise _FileError("is not a private key (no -----BEGIN ... PRIVATE KEY----- line)")
    armor = first.group(1)
    if armor == "ENCRYPTED PRIVATE KEY" or any(line.startswith("Proc-Type:") and "ENCRYPTED" in line
                                                for line in lines):
        raise _FileError(ENCRYPTED)
    if armor not in _PEM:
        raise _FileError(f"is a {armor}, not a private key")
    if lines[-1] != f"-----END {armor}-----":
        raise _FileError(f"is cut short (no -----END {armor}----- line)")
    expected = _PEM[armor]
    if expected is not None and expected != key_type:
        raise _FileError(f"is a {armor} ({expected}), not {key_type} as its name says")
    body = _b64("".join(line for line in lines[1:-1] if ":" not in line))
    if armor != "OPENSSH PRIVATE KEY":
        if not body:
            raise _FileError("is empty between its BEGIN and END lines")
        return None
    # PROTOCOL.key: magic, cipher, kdf, kdf options, number of keys, the public keys, the rest.
    if not body.startswith(_OPENSSH_MAGIC):
        raise _FileError("is not an OpenSSH private key (no openssh-key-v1 header)")
    cipher, pos = _string(body, len(_OPENSSH_MAGIC))
    _kdf, pos = _string(body, pos)
    _kdf_options, pos = _string(body, pos)
    if cipher != b"none":
        raise _FileError(ENCRYPTED)
    if body[pos:pos + 4] != (1).to_bytes(4, "big"):
        raise _FileError("holds more than one key (or none); a host key file holds one")
    public, _ = _string(body, pos + 4)
    found = _blob_type(public)
    if found not in KEY_TYPES[key_type]:
        raise _FileError(f"holds a {found} key, not {key_type} as its name says")
    return public


def _public(data: bytes, key_type: str, *, certificate: bool) -> bytes:
    """Check a .pub (or -cert.pub) line; the key blob it carries."""
    lines = _text(data).strip().splitlines()
    if len(lines) != 1:
        raise _FileError("is not one line (a public key is \"TYPE BASE64 [comment]\")" if lines else "is empty")
    fields = lines[0].split()
    if len(fields) < 2:
        raise _FileError("is not a public key (\"TYPE BASE64 [comment]\")")
    allowed = tuple(f"{t}-cert-v01@openssh.com" for t in KEY_TYPES[key_type]) if certificate else KEY_TYPES[key_type]
    if fields[0] not in allowed:
        raise _FileError(f"holds a {fields[0]} key, not {key_type} as its name says")
    blob = _b64(fields[1])
    if _blob_type(blob) != fields[0]:
        raise _FileError(f"says {fields[0]} but its key data is a {_blob_type(blob)} key")
    return blob


def _read(dir_fd: int, name: str) -> bytes:
    """The file's bytes: never through a symlink, never opening anything but a regular file."""
    fd = ops.open_path_at(dir_fd, name)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((what for test, what in _KINDS if test(st.st_mode)), "not a regular file")
            raise _FileError(f"is {kind}; only regular files are copied")
        if st.st_size > LIMIT:
            raise _FileError(f"is {st.st_size} bytes; a host key file is a few KiB (at most {LIMIT >> 10} KiB here)")
        data = ops.read_opath(fd, st, LIMIT + 1)
    finally:
        os.close(fd)
    if len(data) > LIMIT:
        raise _FileError(f"grew past {LIMIT >> 10} KiB while it was read")
    return data


def read_host_keys(directory: str) -> list[HostKey]:
    """Every host key file of ``directory``, checked as the module doc says. ConfigError (65)
    naming each bad file, and nothing read is kept, when one is wrong."""
    try:
        dir_fd = ops.open_root(directory)
    except NotADirectoryError:
        raise ConfigError(f"--host-keys {directory}: not a directory") from None
    except OSError as e:
        raise ConfigError(f"--host-keys {directory}: {e.strerror}") from None
    where = directory.rstrip("/") or "/"
    problems: list[str] = []
    keys: list[HostKey] = []
    publics: dict[str, bytes] = {}  # key file name -> the public key blob it carries
    try:
        names = ops.listdir_fd(dir_fd)
        for name in names:
            try:
                keys.append(_check(dir_fd, name, publics))
            except _FileError as e:
                problems.append(f"--host-keys {where}/{name} {e}")
            except OSError as e:
                problems.append(f"--host-keys {where}/{name}: {e.strerror}")
    finally:
        os.close(dir_fd)
    problems += [f"--host-keys {where}/{p}" for p in _pairs(keys, publics, set(names))]
    if not keys and not problems:
        problems.append(f"--host-keys {where}: no host keys in it")
    if problems:
        more = f"\n{len(problems)} problems; nothing was changed" if len(problems) > 1 else ""
        raise ConfigError("\n".join(problems) + more, hint=HINT)
    return keys


def _check(dir_fd: int, name: str, publics: dict[str, bytes]) -> HostKey:
    match = NAME.fullmatch(name)
    if match is None or match.group(1) not in KEY_TYPES:
        raise _FileError("is not a host key name (ssh_host_TYPE_key, ssh_host_TYPE_key.pub, "
                         f"ssh_host_TYPE_key-cert.pub; TYPE {', '.join(KEY_TYPES)})")
    key_type, suffix = match.group(1), match.group(2)
    data = _read(dir_fd, name)
    if suffix is None:
        public = _private(data, key_type)
        if public is not None:
            publics[name] = public
        return HostKey(name, data, PRIVATE_MODE)
    blob = _public(data, key_type, certificate=suffix == "-cert.pub")
    if suffix == ".pub":
        publics[name] = blob
    return HostKey(name, data, PUBLIC_MODE)


def _pairs(keys: Sequence[HostKey], publics: dict[str, bytes], names: set[str]) -> list[str]:
    """Each private key with its .pub, each .pub and certificate with its private key, and an
    OpenSSH private key's public half the same as its .pub's (``names``: all of DIR, so a bad
    .pub is not also reported missing)."""
    problems: list[str] = []
    for key in keys:
        private = key.name if key.private else key.name.removesuffix(".pub").removesuffix("-cert")
        if key.private and f"{private}.pub" not in names:
            problems.append(f"{key.name} has no {private}.pub beside it (ssh-keygen -y -f {key.name} writes it)")
        elif not key.private and private not in names:
            problems.append(f"{key.name} has no private key {private} beside it")
        elif key.private and private in publics and f"{private}.pub" in publics \
                and publics[private] != publics[f"{private}.pub"]:
            problems.append(f"{private}.pub is not the public key of {private}")
    return problems

