"""Differential tests on btrfs: v, q and Q lines (and the remove, replace and clean walks over
subvolumes) through systemd-tmpfiles 262 and freshroot, each on a btrfs file system of its own.

Every root gets a fresh sparse 128 MiB image (mkfs.btrfs, attached with ``losetup -f`` and
detached by that device at the end), mounted in a private mount namespace of a forked child.
The root is a subvolume of that file system (or, as a case says, a plain directory on it, the
file system's top level, or a tmpfs). Compared: the tree as the differential harness sees it,
plus whether each directory is a subvolume; the exit status; the lines of stderr about
subvolumes and quota; and, with quotas on, the quota groups and which qgroup is in which.
Subvolume ids become paths below the root (both file systems are made the same way, so an id
that names no subvolume any more, a deleted one, is kept as a number and still compares).

systemd makes subvolumes only when the root directory is itself a subvolume
($SYSTEMD_TMPFILES_FORCE_SUBVOL overrides that), falls back to a directory where the
subvolume ioctl is not supported (a tmpfs mounted inside the root), and leaves an existing
directory or subvolume as it is. ``q`` puts the new subvolume's qgroup into the qgroups its
parent subvolume's is in; ``Q`` puts a new qgroup in between (level one below the parent's
lowest, 255 when it has none) -- only on creation, and only with quotas on.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.nsutil import in_mount_namespace
from tests.tmpfiles.harness import (
    Case,
    D,
    Entry,
    F,
    L,
    Node,
    diff_trees,
    materialize,
    run_freshroot,
    run_systemd,
    snapshot,
)

pytestmark = [pytest.mark.oracle, pytest.mark.root, pytest.mark.netns, pytest.mark.slow]

BTRFS_SUPER_MAGIC = 0x9123683E
IMAGE_SIZE = 128 << 20
OLD = 1_000_000_000.0  # an mtime long past (2001)


def SV(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: float | None = None) -> Node:  # noqa: N802
    """A subvolume in a starting tree (made with ``btrfs subvolume create``)."""
    return Node("v", path, mode, uid, gid, mtime=mtime)


@dataclass(frozen=True)
class BtrfsCase:
    name: str
    config: str
    tree: tuple[Node, ...] = ()
    quota: bool = False
    # Quota groups set up before the run: "create L/N", "assign A B" (A: a qgroup or a
    # subvolume's path below the root, which names its leaf qgroup; B: a qgroup).
    qgroups: tuple[str, ...] = ()
    root: str = "subvol"  # subvol, dir (a plain directory on btrfs), top (the top level), tmpfs
    tmpfs: tuple[str, ...] = ()  # paths below the root to mount a tmpfs on
    args: tuple[str, ...] = ("--create",)
    env: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


NESTED = """v /v1 0700
q /q1 0750 alice users
Q /Q1
v /v1/v2
Q /Q1/Q2
q /Q1/q3
Q /Q1/Q2/Q4
q /Q1/Q2/q5
d /d1
v /d1/v3
q /d1/q4
Q /d1/Q5
"""
ONE_OF_EACH = "v /v 0700 bob\nq /q 0750 alice users\nQ /Q\nq /Q/q\n"
SUBVOLUMES_WITH_CONTENT = (SV("/sv1"), F("/sv1/file", "x"), D("/sv1/dir"), F("/sv1/dir/f", "y"),
                           SV("/sv2"), SV("/sv3"), F("/sv3/file", "z"),
                           D("/d1"), SV("/d1/sv7"), F("/d1/sv7/file", "w"), F("/d1/plain", "p"))

CASES = [
    # Quotas off: subvolumes (or directories where those cannot be) with their mode and owner.
    BtrfsCase("v-missing", "v /a 0700\nv /b 0751 alice users\nv /c\nv /d :0700 bob\n"),
    BtrfsCase("v-nested", "v /a\nv /a/b 0700\nv /a/b/c\nd /a/b/c/d\nv /a/b/c/d/e 0711\n"),
    BtrfsCase("v-missing-parents", "v /p/q/r 0750 bob\nq /s/t\n"),
    BtrfsCase("v-existing-dir", "v /x 0755 bob\nq /y 0700\nQ /z :0700 alice\n",
              (D("/x", 0o700, 1000), D("/y", 0o755), D("/z", 0o750))),
    BtrfsCase("v-existing-subvolume", "v /x 0750 alice\nq /y\nQ /z 0700\n",
              (SV("/x", 0o700), SV("/y", 0o755, 1001), SV("/z"))),
    BtrfsCase("v-existing-file", "v /x\nq /y\nQ /z/sub\n", (F("/x", "f"), L("/y", "x"), F("/z", "f"))),
    BtrfsCase("v-dry-run", NESTED, args=("--create", "--dry-run")),
    BtrfsCase("q-Q-quota-off", NESTED),
    # Quotas on.
    BtrfsCase("q-Q-nested", NESTED, quota=True),
    BtrfsCase("q-Q-existing-dirs", "q /x\nQ /y 0700\nQ /y/z\n", (D("/x"), D("/y")), quota=True),
    BtrfsCase("q-Q-existing-subvolumes", "q /x\nQ /y 0700\nQ /y/z\n", (SV("/x"), SV("/y")), quota=True),
    BtrfsCase("q-parent-in-two-qgroups", "q /a\nq /a/b\nv /c\nQ /d\nq /d/e\n", quota=True,
              qgroups=("create 2/200", "create 3/300", "assign / 2/200", "assign / 3/300")),
    BtrfsCase("Q-no-level-left", "Q /a\nQ /a/b 0700 alice\nq /a/c\n", quota=True,
              qgroups=("create 2/200", "create 3/300", "assign / 2/200", "assign / 3/300")),
    BtrfsCase("Q-parent-at-level-1", "Q /a 0700 bob\nq /b\n", quota=True,
              qgroups=("create 1/100", "assign / 1/100")),
    BtrfsCase("Q-intermediary-exists", "Q /a\n", quota=True, qgroups=("create 255/257",)),
    BtrfsCase("Q-chained-qgroups", "Q /a\nq /a/b\n", quota=True,
              qgroups=("create 5/500", "create 6/600", "assign 5/500 6/600", "assign / 5/500")),
    BtrfsCase("q-Q-top-level-root", ONE_OF_EACH, root="top", quota=True),
    # Which root gets subvolumes, and where the file system has none.
    BtrfsCase("v-plain-directory-root", ONE_OF_EACH, root="dir", quota=True),
    BtrfsCase("force-subvol-directory-root", ONE_OF_EACH, root="dir", quota=True,
              env={"SYSTEMD_TMPFILES_FORCE_SUBVOL": "1"}),
    BtrfsCase("force-subvol-yes-mixed-case", ONE_OF_EACH, root="dir", env={"SYSTEMD_TMPFILES_FORCE_SUBVOL": "Yes"}),
    BtrfsCase("force-subvol-off", ONE_OF_EACH, quota=True, env={"SYSTEMD_TMPFILES_FORCE_SUBVOL": "0"}),
    BtrfsCase("force-subvol-unparsable", ONE_OF_EACH, quota=True, env={"SYSTEMD_TMPFILES_FORCE_SUBVOL": "maybe"}),
    BtrfsCase("force-subvol-empty", ONE_OF_EACH, env={"SYSTEMD_TMPFILES_FORCE_SUBVOL": ""}),
    BtrfsCase("tmpfs-root", ONE_OF_EACH, root="tmpfs"),
    BtrfsCase("force-subvol-tmpfs-root", ONE_OF_EACH, root="tmpfs", env={"SYSTEMD_TMPFILES_FORCE_SUBVOL": "1"}),
    BtrfsCase("tmpfs-inside-root", "v /t/a\nq /t/b 0700\nQ /t/c\nv /u\nQ /u/w\n", (D("/t"),), tmpfs=("/t",),
              quota=True),
    # Remove, replace and clean walks over subvolumes.
    BtrfsCase("remove-subvolumes", "R /sv1\nR /d1\nr /sv2\nD /sv3\n", SUBVOLUMES_WITH_CONTENT,
              args=("--remove",), quota=True),
    BtrfsCase("remove-nested-subvolumes", "R /a\nD /b\n",
              (SV("/a"), SV("/a/in"), F("/a/in/f"), D("/a/in/d"), SV("/b"), D("/b/d"), SV("/b/d/in"),
               F("/b/d/in/f")), args=("--remove",)),
    BtrfsCase("remove-then-create", "R /sv1\nv /sv1 0700\nQ /sv3\n", SUBVOLUMES_WITH_CONTENT,
              args=("--remove", "--create"), quota=True),
    BtrfsCase("replace-subvolumes", "L+ /a - - - - target\np+ /b\nL+ /c - - - - target\n",
              (SV("/a"), F("/a/f"), SV("/a/in"), F("/a/in/f"), SV("/b"), D("/c"), SV("/c/in")), quota=True),
    BtrfsCase("wrong-type-subvolumes", "f= /a\nf= /b\nd= /c/sub\nL= /e - - - - t\n",
              (SV("/a"), F("/a/f"), SV("/a/in"), F("/a/in/f"), SV("/b"), F("/b/f"), F("/c"), SV("/e"),
               D("/e/d"))),
    BtrfsCase("wrong-type-nested-deeper", "f= /g\nf= /h\n",
              (SV("/g"), D("/g/dir"), SV("/g/dir/in"), F("/g/dir/f"), F("/g/z"), D("/h"), D("/h/m"), F("/h/f")),
              tmpfs=("/h/m",)),
    BtrfsCase("parent-subvolume-in-the-way", "d= /sv/x/y\nf= /w/sub/file\n",
              (SV("/sv"), SV("/sv/x"), F("/sv/x/f"), F("/w", "file"))),
    BtrfsCase("replace-subvolume-with-qgroups", "L+ /a - - - - target\nR /b\n",
              (SV("/a"), SV("/b")), args=("--create", "--remove"), quota=True,
              qgroups=("create 255/257", "assign /a 255/257", "create 255/258", "assign /b 255/258")),
    BtrfsCase("clean-subvolumes", "v /sv - - - 1d\nd /d - - - 1d\nq /q - - - 1d\n",
              (SV("/sv"), F("/sv/old", "o", mtime=OLD), F("/sv/new", "n"), SV("/sv/in"), F("/sv/in/old", mtime=OLD),
               D("/d"), SV("/d/s"), F("/d/s/old", mtime=OLD), SV("/d/old", mtime=OLD), SV("/q"),
               F("/q/old", mtime=OLD)), args=("--clean",)),
]


def _missing_tools() -> str | None:
    for tool in ("mkfs.btrfs", "btrfs", "losetup", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"needs {tool} (btrfs-progs, util-linux)"
    return None


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _fs_type(path: str) -> int:
    buf = ctypes.create_string_buffer(120)  # struct statfs; f_type comes first
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.statfs(os.fsencode(path), buf) != 0:
        raise OSError(ctypes.get_errno(), path)
    return int.from_bytes(buf.raw[:8], "little")


def _build(case: BtrfsCase, root: Path) -> None:
    materialize(root, ())  # the harness's /etc/passwd, /etc/group, machine-id, os-release
    for node in case.tree:
        p = root / node.path.lstrip("/")
        if node.kind != "v":
            materialize(root, (node,), base={})
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        _run("btrfs", "subvolume", "create", str(p))
        os.chown(p, node.uid, node.gid)
        os.chmod(p, node.mode)
    # materialize() chmods the root each call; entries' own mtimes were set when made, but
    # making entries below them since changed the directories' mtimes: set them again.
    for node in case.tree:
        if node.mtime is not None:
            os.utime(root / node.path.lstrip("/"), (node.mtime, node.mtime), follow_symlinks=False)


def _qgroup_arg(spec: str, root: Path) -> str:
    if spec.startswith("/"):
        out = _run("btrfs", "inspect-internal", "rootid", str(root / spec.lstrip("/")))
        return f"0/{out.strip()}"
    return spec


def _names(fs: Path, root: Path) -> dict[int, str]:
    """Subvolume id -> its path below the root ("/" for the root itself)."""
    names = {5: "<top>"}
    below = os.path.relpath(root, fs)
    for line in _run("btrfs", "subvolume", "list", str(fs)).splitlines():
        m = re.match(r"ID (\d+) .* path (.*)$", line)
        assert m, line
        path = m.group(2)
        if below == ".":
            names[int(m.group(1))] = "/" + path
        elif path == below:
            names[int(m.group(1))] = "/"
        elif path.startswith(below + "/"):
            names[int(m.group(1))] = path[len(below):]
        else:
            names[int(m.group(1))] = "<outside>/" + path
    return names


def _qgroups(fs: Path, root: Path) -> dict[str, list[str]]:
    """The qgroups ("level:subvolume path", or "level:#id") and their memberships."""
    names = _names(fs, root)

    def name(qgroupid: str) -> str:
        level, _, num = qgroupid.partition("/")
        return f"{level}:{names.get(int(num), '#' + num)}"

    groups, members = [], []
    for line in _run("btrfs", "qgroup", "show", "-pc", "--raw", str(fs)).splitlines():
        cols = line.split()
        if not cols or not re.fullmatch(r"\d+/\d+", cols[0]):
            continue
        groups.append(name(cols[0]))
        if cols[3] != "-":
            members += [f"{name(cols[0])} in {name(parent)}" for parent in cols[3].split(",")]
    return {"qgroups": sorted(groups), "members": sorted(members)}


def _tree(root: Path) -> dict[str, Entry]:
    tree = snapshot(root)
    for rel, entry in tree.items():
        if entry["type"] == "dir":
            full = str(root) + ("" if rel == "/" else rel)
            entry["subvolume"] = os.lstat(full).st_ino == 256 and _fs_type(full) == BTRFS_SUPER_MAGIC
    return tree


def _messages(stderr: str, root: Path) -> list[str]:
    """The lines about subvolumes, quota and removals, with the root's path taken out."""
    keep = re.compile(r"subvol|quota|SUBVOL|remov|rm -rf|mount point", re.IGNORECASE)
    return [line.replace(str(root), "<root>") for line in stderr.splitlines() if keep.search(line)]


def _apply(case: BtrfsCase, label: str, oracle: Path, scratch: Path) -> dict[str, object]:
    """In a private mount namespace: a btrfs of its own for ``label``'s root, the run, and
    what came of it."""
    image = scratch / f"{label}.img"
    with open(image, "wb") as f:
        f.truncate(IMAGE_SIZE)
    _run("mkfs.btrfs", "-q", "-f", str(image))
    device = _run("losetup", "-f", "--show", str(image)).strip()
    fs = scratch / f"{label}-fs"
    fs.mkdir()
    try:
        # A commit every second: the cleaner then drops deleted subvolumes (and the kernel
        # their qgroups) within a second, not thirty, for "btrfs subvolume sync" below.
        _run("mount", "-t", "btrfs", "-o", "commit=1", device, str(fs))
        try:
            root = fs if case.root == "top" else fs / "root"
            if case.root == "subvol":
                _run("btrfs", "subvolume", "create", str(root))
            elif case.root == "dir":
                root.mkdir()
            elif case.root == "tmpfs":
                root.mkdir()
                _run("mount", "-t", "tmpfs", "tmpfs", str(root))
            _build(case, root)
            for where in case.tmpfs:
                _run("mount", "-t", "tmpfs", "tmpfs", str(root / where.lstrip("/")))
            if case.quota:
                _run("btrfs", "quota", "enable", str(fs))
                _run("btrfs", "quota", "rescan", "-w", str(fs))
            for step in case.qgroups:
                verb, *args = step.split()
                if verb == "create":
                    _run("btrfs", "qgroup", "create", args[0], str(fs))
                else:
                    _run("btrfs", "qgroup", "assign", "--no-rescan", _qgroup_arg(args[0], root), args[1], str(fs))
            conf = scratch / f"{label}.conf"
            conf.write_text(case.config)
            run = Case(case.name, case.config, args=case.args, env=case.env)
            if label == "systemd":
                status, err = run_systemd(oracle, root, conf, run)
            else:
                status, err = run_freshroot(root, conf, run)
            _run("btrfs", "subvolume", "sync", str(fs))  # deleted subvolumes cleaned up
            return {"status": status, "stderr": err, "messages": _messages(err, root), "tree": _tree(root),
                    "qgroups": _qgroups(fs, root) if case.quota else None}
        finally:
            # Everything below fs first (the tmpfs mounts), then fs itself.
            subprocess.run(["umount", "-R", str(fs)], capture_output=True, check=False)
    finally:
        _run("losetup", "-d", device)
        with contextlib.suppress(OSError):
            image.unlink()


def compare(case: BtrfsCase, oracle: Path, scratch: Path) -> list[str]:
    theirs = in_mount_namespace(lambda: _apply(case, "systemd", oracle, scratch))
    ours = in_mount_namespace(lambda: _apply(case, "freshroot", oracle, scratch))
    problems = diff_trees(theirs["tree"], ours["tree"], ("systemd", "freshroot"))  # type: ignore[arg-type]
    if theirs["status"] != ours["status"]:
        problems.append(f"exit status differs: systemd={theirs['status']} freshroot={ours['status']}")
    for key in ("qgroups", "messages"):
        if theirs[key] != ours[key]:
            problems.append(f"{key} differ:\n  systemd:   {theirs[key]}\n  freshroot: {ours[key]}")
    if problems:
        problems.append(f"-- config:\n{case.config}-- systemd stderr:\n{theirs['stderr']}"
                        f"-- freshroot stderr:\n{ours['stderr']}")
    return problems


@pytest.fixture
def btrfs_tools() -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip(missing)


def test_case_names_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.usefixtures("btrfs_tools")
@pytest.mark.parametrize("case", CASES, ids=str)
def test_against_newest(case: BtrfsCase, oracles: Path, scratch: Path) -> None:
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, f"{case.name}:\n" + "\n".join(problems)


@pytest.mark.usefixtures("btrfs_tools")
def test_subvolumes_and_qgroups_are_made(oracles: Path, scratch: Path) -> None:
    """Not only the same as systemd: the cases above really make subvolumes and qgroups here
    (a kernel without btrfs or quotas would make both tools agree on plain directories)."""
    case = next(c for c in CASES if c.name == "q-Q-nested")
    ours = in_mount_namespace(lambda: _apply(case, "freshroot", oracles, scratch))
    tree = ours["tree"]
    assert isinstance(tree, dict)
    assert [p for p, e in tree.items() if e.get("subvolume")] == [
        "/", "/Q1", "/Q1/Q2", "/Q1/Q2/Q4", "/Q1/Q2/q5", "/Q1/q3", "/d1/Q5", "/d1/q4", "/d1/v3", "/q1", "/v1", "/v1/v2"]
    assert not tree["/d1"]["subvolume"]
    qgroups = ours["qgroups"]
    assert isinstance(qgroups, dict)
    assert "0:/Q1 in 255:/Q1" in qgroups["members"]
    assert "255:/Q1/Q2 in 255:/Q1" not in qgroups["members"]
    assert "254:/Q1/Q2 in 255:/Q1" in qgroups["members"]
    assert "0:/Q1/q3 in 255:/Q1" in qgroups["members"]
    assert ours["status"] == 0

