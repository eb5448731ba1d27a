"""The symlink-attack suite: a non-root user plants a symlink in a path a tmpfiles line acts
on, pointing into a root-owned directory; a safe implementation never changes anything there.

Each attack is one tmpfiles line whose path goes through /home/mallory/link, a symlink owned by
uid 1000 (in a directory uid 1000 owns) to ../../secret. /secret is root's: a file, a
directory with a file, all mode 0600/0700. After the run, /secret must be exactly as before:
the same entries, contents, modes, owners, xattrs (ACLs included) and file attributes.

"During the run" attacks use a real directory that an attacker process (uid 1000, forked and
setuid) keeps swapping for the symlink while the tool runs, many times over.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import stat
import struct
import subprocess
import time
from pathlib import Path

MALLORY = 1000
FS_IOC_GETFLAGS = 0x80086601

# (name, tmpfiles line, operation). {p} is the attacked path prefix.
ATTACKS: list[tuple[str, str, str]] = [
    ("r", "r {p}/target", "--remove"),
    ("R", "R {p}/dir", "--remove"),
    ("D", "D {p}/dir", "--remove"),
    ("e", "e {p}/dir - - - 0", "--clean"),
    ("clean", "d {p}/dir - - - 0", "--clean"),
    ("z", "z {p}/target 0666 1000 1000", "--create"),
    ("Z", "Z {p}/dir 0777 1000 1000", "--create"),
    ("t", "t {p}/target - - - - user.pwned=1", "--create"),
    ("T", "T {p}/dir - - - - user.pwned=1", "--create"),
    ("a", "a {p}/target - - - - u:1000:rwx", "--create"),
    ("A", "A {p}/dir - - - - u:1000:rwx", "--create"),
    ("h", "h {p}/target - - - - +A", "--create"),
    ("H", "H {p}/dir - - - - +A", "--create"),
    ("C", "C {p}/planted - - - - /src", "--create"),
    ("w", "w {p}/target - - - - PWNED", "--create"),
    ("f", "f {p}/newfile 0666 1000 1000 - PWNED", "--create"),
    ("f+", "f+ {p}/target 0666 1000 1000 - PWNED", "--create"),
]


def build(root: Path) -> None:
    """The scratch root: /secret (root's), /home/mallory (uid 1000's) with the planted link."""
    (root / "secret/dir").mkdir(parents=True)
    (root / "secret/target").write_text("SECRET\n")
    (root / "secret/dir/file").write_text("SECRET2\n")
    for p, mode in (("secret", 0o700), ("secret/dir", 0o700), ("secret/target", 0o600), ("secret/dir/file", 0o600)):
        os.chmod(root / p, mode)
    (root / "src").write_text("copied\n")
    home = root / "home/mallory"
    home.mkdir(parents=True)
    os.chown(home, MALLORY, MALLORY)
    os.symlink("../../secret", home / "link")
    os.lchown(home / "link", MALLORY, MALLORY)
    (home / "work").mkdir()
    (home / "work/dir").mkdir()
    (home / "work/target").write_text("mine\n")
    for p in ("work", "work/dir", "work/target"):
        os.lchown(home / p, MALLORY, MALLORY)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nmallory:x:1000:1000::/home/mallory:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nmallory:x:1000:\n")


def plant_in_root_dir(root: Path) -> str:
    """A second set-up, after build(): /srv is root's, and holds /srv/link, a symlink owned by
    uid 1000 to ../secret (a user's link that ended up in a root-owned directory: copied there
    with its owner kept, or left behind when the directory was given back to root). Returns
    the attacked path prefix, "/srv/link"."""
    (root / "srv").mkdir(mode=0o755)
    os.symlink("../secret", root / "srv/link")
    os.lchown(root / "srv/link", MALLORY, MALLORY)
    return "/srv/link"


def attack(argv: list[str], root: Path, line: str, op: str, *, in_root_dir: bool = False,
           ) -> tuple[int, dict[str, tuple[object, ...]], dict[str, tuple[object, ...]]]:
    """One planted attack, for showing what a tool does: (exit status, /secret before, after).
    ``line`` has {p} for the attacked prefix: /home/mallory/link (uid 1000's link in uid
    1000's directory), or with ``in_root_dir`` /srv/link (see plant_in_root_dir)."""
    build(root)
    prefix = plant_in_root_dir(root) if in_root_dir else "/home/mallory/link"
    before = fingerprint(root)
    conf = root.parent / f"{root.name}.conf"
    conf.write_text(line.format(p=prefix) + "\n")
    status = run_tool(argv, root, conf, op)
    return status, before, fingerprint(root)


def _attrs(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return -1
    try:
        buf = fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 8)
        return int(struct.unpack("<l", buf[:4])[0])
    except OSError:
        return -1
    finally:
        os.close(fd)


def fingerprint(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything an attack could change below /secret."""
    out: dict[str, tuple[object, ...]] = {}
    base = root / "secret"
    for dirpath, dirnames, filenames in os.walk(base):
        for name in ["", *dirnames, *filenames]:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            content = b""
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(p).read_bytes()).digest()
            xattrs = tuple(sorted((k, os.getxattr(p, k, follow_symlinks=False))
                                  for k in os.listxattr(p, follow_symlinks=False)))
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, content, xattrs, _attrs(p))
    return out


def run_tool(argv: list[str], root: Path, conf: Path, op: str) -> int:
    proc = subprocess.run([*argv, f"--root={root}", op, str(conf)], capture_output=True, check=False)
    return proc.returncode


def planted(argv: list[str], root: Path, line: str, op: str) -> bool:
    """One planted-before-the-run attack. True if /secret changed (the tool fell for it)."""
    build(root)
    before = fingerprint(root)
    conf = root.parent / f"{root.name}.conf"
    conf.write_text(line.format(p="/home/mallory/link") + "\n")
    run_tool(argv, root, conf, op)
    return fingerprint(root) != before


def _swapper(home: Path, stop_after: float) -> int:
    """Fork a uid-1000 process that swaps home/work between a real directory and the link."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(MALLORY)
            os.setuid(MALLORY)
            end = time.monotonic() + stop_after
            while time.monotonic() < end:
                with contextlib.suppress(OSError):
                    os.rename(home / "work", home / "work.real")
                    os.symlink("../../secret", home / "work")
                with contextlib.suppress(OSError):
                    os.unlink(home / "work")
                    os.rename(home / "work.real", home / "work")
        finally:
            os._exit(0)
    return pid


def raced(argv: list[str], root: Path, line: str, op: str, rounds: int = 20) -> bool:
    """Run the tool ``rounds`` times while an attacker swaps a directory for the link."""
    build(root)
    before = fingerprint(root)
    conf = root.parent / f"{root.name}.conf"
    conf.write_text(line.format(p="/home/mallory/work") + "\n")
    pid = _swapper(root / "home/mallory", stop_after=60)
    try:
        for _ in range(rounds):
            run_tool(argv, root, conf, op)
            if fingerprint(root) != before:
                return True
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return False
