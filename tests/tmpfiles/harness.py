"""Differential harness: the same tmpfiles.d input through systemd-tmpfiles and freshroot.

A :class:`Case` is tmpfiles.d text, an optional starting tree (a tuple of :class:`Node`) and
command-line options. :func:`check` materialises the tree twice in scratch roots (each with
the same /etc/passwd, /etc/group, machine-id and os-release, so names and specifiers resolve
under --root), runs systemd-tmpfiles with --root on one and freshroot-tmpfiles (in process)
on the other, and compares the trees entry by entry -- type, mode, uid, gid, size, content
hash, link target, rdev, xattrs (user.*, trusted.*, security.capability, POSIX ACLs), file
attributes -- the exit status, and the messages (:func:`messages`). A difference names the
path and the property, or the message only one tool printed.

Messages: every line either tool writes to stderr at the default log level ("info": errors,
warnings, notices, the info lines of '-' lines that failed) is compared, after the scratch
root's path is replaced by ``{root}`` in both. Left out: "Would ..." lines (the actions a
--dry-run reports) and, when a case sets SYSTEMD_LOG_LEVEL=debug, the comparison as a whole
(debug lines are not meant to match), and empty lines (systemd splits a message at its line
breaks, which a path may hold, and drops the empty parts). The lines are compared as sorted
lists (a multiset):
systemd visits the matches of a glob in readdir() order, freshroot in sorted order, so the
same messages may come in another order. Only the newest systemd's messages are compared
(``compare_messages=False`` for 252, whose wording is older).

One message is compared by the paths it names only: the refusal of an unsafe path transition
(the SAFE walk). systemd writes "Detected unsafe path transition A (owned by U) -> B (owned by
V) during canonicalization of P." with U and V looked up in the *host's* user database even
under --root (so they name whoever has that uid on the machine running the test); freshroot
(freshroot.fs.chase) names the path and the entry it refused in words of its own rule. Both
become "unsafe path transition to B", B relative to the root.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import hashlib
import io
import os
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001:Bob:/home/bob:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
users:x:100:alice,bob
alice:x:1000:
bob:x:1001:
nogroup:x:65534:
"""
MACHINE_ID = "0123456789abcdef0123456789abcdef\n"
OS_RELEASE = 'ID=testos\nVERSION_ID=42\nBUILD_ID=b7\nVARIANT_ID=lab\nNAME="Test OS"\nIMAGE_ID=img\nIMAGE_VERSION=3\n'
BASE_FILES = {"/etc/passwd": PASSWD, "/etc/group": GROUP, "/etc/machine-id": MACHINE_ID,
              "/etc/os-release": OS_RELEASE}

FS_IOC_GETFLAGS = 0x80086601
XATTR_PREFIXES = ("user.", "trusted.", "security.capability", "system.posix_acl_")


@dataclass(frozen=True)
class Node:
    """One entry of a starting tree. ``kind``: d f l p s c b (directory, file, symlink,
    fifo, socket, char device, block device)."""

    kind: str
    path: str
    mode: int = -1  # -1: 0755 for directories, 0644 otherwise
    uid: int = 0
    gid: int = 0
    content: bytes = b""
    target: str = ""
    rdev: tuple[int, int] = (0, 0)
    xattrs: tuple[tuple[str, bytes], ...] = ()
    flags: str = ""  # chattr letters to set after creation (e.g. "d", "A")
    mtime: float | None = None


def D(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0, **kw: object) -> Node:  # noqa: N802
    return Node("d", path, mode, uid, gid, **kw)  # type: ignore[arg-type]


def F(path: str, content: str | bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0,  # noqa: N802
      **kw: object) -> Node:
    data = content.encode() if isinstance(content, str) else content
    return Node("f", path, mode, uid, gid, data, **kw)  # type: ignore[arg-type]


def L(path: str, target: str, uid: int = 0, gid: int = 0) -> Node:  # noqa: N802
    return Node("l", path, 0o777, uid, gid, target=target)


def P(path: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Node:  # noqa: N802
    return Node("p", path, mode, uid, gid)


def S(path: str, mode: int = 0o755) -> Node:  # noqa: N802
    return Node("s", path, mode)


def CDEV(path: str, major: int = 1, minor: int = 3, mode: int = 0o666) -> Node:  # noqa: N802
    return Node("c", path, mode, rdev=(major, minor))


def BDEV(path: str, major: int = 7, minor: int = 0, mode: int = 0o660) -> Node:  # noqa: N802
    return Node("b", path, mode, rdev=(major, minor))


@dataclass(frozen=True)
class Case:
    name: str
    config: str
    tree: tuple[Node, ...] = ()
    args: tuple[str, ...] = ("--create",)
    # Whether systemd 252 is expected to agree (newer behaviour otherwise).
    v252: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    # The reason when this case shows a deliberate difference (see differences.py).
    difference: str | None = None
    # Files every root starts with, replacing BASE_FILES (passwd, group, machine-id, os-release).
    base: Mapping[str, str] | None = None

    def __str__(self) -> str:
        return self.name


_CHATTR = {"s": 0x1, "u": 0x2, "c": 0x4, "S": 0x8, "i": 0x10, "a": 0x20, "d": 0x40, "A": 0x80,
           "j": 0x4000, "t": 0x8000, "D": 0x10000, "T": 0x20000, "e": 0x80000, "C": 0x800000,
           "P": 0x20000000}


def _set_flags(path: str, letters: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        buf = array.array("I", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        for ch in letters:
            buf[0] |= _CHATTR[ch]
        fcntl.ioctl(fd, 0x40086602, buf, False)
    finally:
        os.close(fd)


def materialize(root: Path, tree: Iterable[Node], base: Mapping[str, str] | None = None) -> list[socket.socket]:
    """Build ``tree`` below ``root``. Returns bound sockets (keep them open while running)."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    for rel, text in (BASE_FILES if base is None else base).items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    sockets: list[socket.socket] = []
    for node in tree:
        p = root / node.path.lstrip("/")
        if not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        mode = node.mode if node.mode != -1 else (0o755 if node.kind == "d" else 0o644)
        match node.kind:
            case "d":
                p.mkdir(exist_ok=True)
            case "f":
                p.write_bytes(node.content)
            case "l":
                os.symlink(node.target, p)
            case "p":
                os.mkfifo(p)
            case "s":
                os.mknod(p, stat.S_IFSOCK | mode)  # as a closed bound socket leaves it; no 108-byte limit
            case "c" | "b":
                kind = stat.S_IFCHR if node.kind == "c" else stat.S_IFBLK
                os.mknod(p, kind | mode, os.makedev(*node.rdev))
            case _:
                raise ValueError(node.kind)
        os.chown(p, node.uid, node.gid, follow_symlinks=False)
        if node.kind != "l":
            os.chmod(p, mode)
        for name, value in node.xattrs:
            os.setxattr(p, name, value, follow_symlinks=False)
        if node.flags:
            _set_flags(str(p), node.flags)
        if node.mtime is not None:
            os.utime(p, (node.mtime, node.mtime), follow_symlinks=False)
    return sockets


def _flags(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        buf = array.array("I", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        return int(buf[0])
    except OSError:
        return None
    finally:
        os.close(fd)


Entry = dict[str, object]


def describe(path: str, st: os.stat_result) -> Entry:
    kind = stat.S_IFMT(st.st_mode)
    e: Entry = {"type": {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink",
                         stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "char",
                         stat.S_IFBLK: "block"}.get(kind, "?"),
                "uid": st.st_uid, "gid": st.st_gid}
    if kind != stat.S_IFLNK:
        e["mode"] = f"{st.st_mode & 0o7777:04o}"
    if kind == stat.S_IFREG:
        e["size"] = st.st_size
        with open(path, "rb") as f:
            e["sha256"] = hashlib.sha256(f.read()).hexdigest()[:16]
    elif kind == stat.S_IFLNK:
        e["target"] = os.readlink(path)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        e["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    try:
        names = sorted(n for n in os.listxattr(path, follow_symlinks=False) if n.startswith(XATTR_PREFIXES))
        e["xattrs"] = {n: os.getxattr(path, n, follow_symlinks=False).hex() for n in names}
    except OSError:
        e["xattrs"] = {}
    if kind in (stat.S_IFREG, stat.S_IFDIR):
        e["flags"] = _flags(path)
    return e


def snapshot(root: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}

    def walk(rel: str) -> None:
        if rel.count("/") > 64:
            raise AssertionError(f"{rel}: the tree is deeper than any case makes it (runaway copy?)")
        full = str(root) + rel
        for name in sorted(os.listdir(full or "/")):
            sub = f"{rel}/{name}"
            st = os.lstat(str(root) + sub)
            out[sub] = describe(str(root) + sub, st)
            if stat.S_ISDIR(st.st_mode):
                walk(sub)

    out["/"] = describe(str(root), os.lstat(root))
    walk("")
    return out


def diff_trees(a: Mapping[str, Entry], b: Mapping[str, Entry], names: tuple[str, str]) -> list[str]:
    lines = []
    for path in sorted(set(a) | set(b)):
        if path not in b:
            lines.append(f"{path}: only in {names[0]} ({a[path]['type']})")
        elif path not in a:
            lines.append(f"{path}: only in {names[1]} ({b[path]['type']})")
        else:
            for key in sorted(set(a[path]) | set(b[path])):
                va, vb = a[path].get(key), b[path].get(key)
                if va != vb:
                    lines.append(f"{path}: {key} differs: {names[0]}={va!r} {names[1]}={vb!r}")
    return lines


@dataclass(frozen=True)
class Outcome:
    status: int
    stderr: str
    tree: dict[str, Entry]


def run_systemd(binary: Path, root: Path, conf: Path, case: Case) -> tuple[int, str]:
    env = {"PATH": "/usr/bin:/bin", "SYSTEMD_LOG_LEVEL": "info", "SYSTEMD_LOG_COLOR": "0", **case.env}
    proc = subprocess.run([str(binary), f"--root={root}", *case.args, str(conf)],
                          env=env, capture_output=True, check=False, timeout=60)
    # Paths are bytes: one that is not UTF-8 comes back as the str freshroot prints for it.
    return proc.returncode, proc.stderr.decode("utf-8", "surrogateescape")


def run_freshroot(root: Path, conf: Path, case: Case) -> tuple[int, str]:
    from freshroot.tmpfiles import commands

    err = io.StringIO()
    saved = {k: os.environ.get(k) for k in case.env}
    os.environ.update(case.env)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = commands.main([f"--root={root}", *case.args, str(conf)])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return status, err.getvalue()


def run_in(case: Case, scratch: Path, label: str, oracle: Path | None) -> Outcome:
    """Materialise ``case``'s tree in ``scratch/label`` and apply the case there: with the
    systemd-tmpfiles binary ``oracle``, or with freshroot when ``oracle`` is None."""
    scratch.mkdir(parents=True, exist_ok=True)
    conf = scratch / "case.conf"
    if not conf.exists():
        conf.write_text(case.config)
    root = scratch / label
    held = materialize(root, case.tree, case.base)
    try:
        if oracle is not None:
            status, err = run_systemd(oracle, root, conf, case)
        else:
            status, err = run_freshroot(root, conf, case)
    finally:
        for s in held:
            s.close()
    return Outcome(status, err, snapshot(root))


def apply_both(case: Case, oracle: Path, scratch: Path) -> tuple[Outcome, Outcome]:
    (scratch / "case.conf").unlink(missing_ok=True)
    return run_in(case, scratch, "systemd", oracle), run_in(case, scratch, "freshroot", None)


# The refusal of an unsafe path transition: systemd's words (the owners are names from the
# *host's* NSS, even under --root) and freshroot's own (freshroot.fs.chase). Compared by the
# entry the walk refused to step to (systemd's second path, freshroot's "refusing to follow").
_SYSTEMD_UNSAFE = re.compile(r"Detected unsafe path transition .+? \(owned by [^)]*\) \u2192 (.+?) "
                             r"\(owned by [^)]*\) during canonicalization of .*\.")
_FRESHROOT_UNSAFE = re.compile(r".+?: refusing to follow (.+?): the entry before it is owned by an unprivileged "
                               r"user \(uid \d+\) and it by someone else \(uid \d+\); that user could have "
                               r"planted a symlink there")


def _normalised(line: str) -> str:
    m = _SYSTEMD_UNSAFE.fullmatch(line) or _FRESHROOT_UNSAFE.fullmatch(line)
    if m is None:
        return line
    return f"unsafe path transition to {m.group(1).removeprefix('{root}')}"


def messages(stderr: str, root: Path) -> list[str]:
    """The lines of one run's stderr that are compared (see the module docstring): the root's
    path written ``{root}``, "Would ..." lines left out, unsafe-transition refusals reduced to
    the path refused, sorted."""
    prefix = str(root)
    return sorted(_normalised(line.replace(prefix, "{root}")) for line in stderr.splitlines()
                  if line and not line.startswith("Would "))


def diff_messages(theirs: list[str], ours: list[str]) -> list[str]:
    """The lines only one side printed (as many times as it printed them more often)."""
    from collections import Counter

    a, b = Counter(theirs), Counter(ours)
    return ([f"message only from systemd: {m!r}" for m in sorted((a - b).elements())]
            + [f"message only from freshroot: {m!r}" for m in sorted((b - a).elements())])


def compare(case: Case, oracle: Path, scratch: Path, *, compare_messages: bool = True) -> list[str]:
    """Every difference between systemd and freshroot for ``case`` (empty when they agree):
    trees, exit status and (unless ``compare_messages`` is false) messages."""
    theirs, ours = apply_both(case, oracle, scratch)
    return differences(case, theirs, ours, scratch, compare_messages=compare_messages)


def differences(case: Case, theirs: Outcome, ours: Outcome, scratch: Path, *, labels: tuple[str, str] = (
        "systemd", "freshroot"), compare_messages: bool = True) -> list[str]:
    """What :func:`compare` reports for two outcomes of ``case``, run in ``scratch/labels[i]``."""
    problems = diff_trees(theirs.tree, ours.tree, labels)
    if theirs.status != ours.status:
        problems.append(f"exit status differs: {labels[0]}={theirs.status} {labels[1]}={ours.status}")
    if compare_messages and case.env.get("SYSTEMD_LOG_LEVEL", "info") != "debug":
        problems += diff_messages(messages(theirs.stderr, scratch / labels[0]),
                                  messages(ours.stderr, scratch / labels[1]))
    if problems:
        tree = "".join(f"  {n.kind} {n.path} {n.mode:o} {n.uid}:{n.gid} {n.target or n.content!r}\n"
                       for n in case.tree)
        env = "".join(f"-- env: {k}={v}\n" for k, v in case.env.items())
        problems.append(f"-- args: {' '.join(case.args)}\n{env}-- tree:\n{tree}-- config:\n{case.config}"
                        f"-- {labels[0]} stderr:\n{theirs.stderr}-- {labels[1]} stderr:\n{ours.stderr}")
    return problems


def check(case: Case, oracle: Path, scratch: Path) -> None:
    problems = compare(case, oracle, scratch)
    assert not problems, f"{case.name}:\n" + "\n".join(problems)


def rmtree_scratch(path: Path) -> None:
    """Remove a case's scratch directory, whatever modes its lines left on the directories in
    it (0000 included). chattr +A/+d flags do not stop removal; the cases never set the
    immutable or append-only flags."""
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)
    shutil.rmtree(path, ignore_errors=True)
