"""--clean against systemd-tmpfiles 262 on the same trees: the same survivors, the same exit."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from freshroot.fs.ops import open_root
from freshroot.tmpfiles.clean import Decision, sweep
from freshroot.tmpfiles.load import LoadOptions, load
from freshroot.tmpfiles.messages import Level, stderr_reporter
from tests.tmpfiles.cleantree import HOUR, Node, build, build_deep, listening, snapshot

pytestmark = [pytest.mark.oracle]

OLD = 2 * HOUR
NEW = 60

BASIC = [
    Node("t/old", age=OLD), Node("t/new", age=NEW), Node("t/sub", "d", age=OLD),
    Node("t/sub/old", age=OLD), Node("t/sub/new", age=NEW), Node("t/emptyold", "d", age=OLD),
    Node("t/emptynew", "d", age=NEW), Node("t/deep/a/b/c", age=OLD), Node("t/deep", "d", age=OLD),
    Node("t/deep/a", "d", age=OLD), Node("t/deep/a/b", "d", age=OLD), Node("t/.hidden", age=OLD),
    Node("t/link", "l", age=OLD), Node("t/fifo", "p", age=OLD), Node("t/sticky", age=OLD, mode=0o1644),
    Node("t/dev", "c", age=OLD), Node("t/stale.sock", "s", age=OLD), Node("t", "d", age=OLD),
]

# The walk tells a plain file by the high byte of its mode (freshroot.fs.statx.first_look):
# the permission, setuid, setgid and sticky bits around it must not change what goes.
MODES = [
    Node("t", "d", age=OLD), Node("t/plain", age=OLD, mode=0o644), Node("t/no-owner-read", age=OLD, mode=0o200),
    Node("t/no-bits", age=OLD, mode=0), Node("t/setuid", age=OLD, mode=0o4755), Node("t/setgid", age=OLD, mode=0o2755),
    Node("t/setuid-new", age=NEW, mode=0o4755), Node("t/sticky-setuid", age=OLD, mode=0o5755),
    Node("t/sticky-no-read", age=OLD, mode=0o1200), Node("t/plain-new", age=NEW, mode=0o600),
]

CASES: dict[str, tuple[str, list[Node]]] = {
    "file-modes": ("d /t - - - am:1h\n", MODES),
    "file-modes-default-ages": ("d /t - - - 0\n", MODES),
    "file-modes-remove": ("R /t/* - - - am:1h\n", MODES),
    "d-am": ("d /t - - - am:1h\n", BASIC),
    "d-amAM": ("d /t - - - amAM:1h\n", BASIC),
    "d-default-ages-keep-new-btime": ("d /t - - - 1h\n", BASIC),
    "d-m-only": ("d /t - - - mM:1h\n", BASIC),
    "d-keep-first-level": ("d /t - - - ~amAM:1h\n", BASIC),
    "D-age": ("D /t - - - amAM:1h\n", BASIC),
    "v-age": ("v /t - - - amAM:1h\n", BASIC),
    "x-glob": ("d /t - - - amAM:1h\nx /t/sub\nx /t/*old\n", BASIC),
    "x-hidden-glob": ("d /t - - - amAM:1h\nx /t/.*\n", BASIC),
    "X-inherits": ("d /t - - - amAM:1h\nX /t/sub\n", BASIC),
    "X-glob-inherits": ("d /t - - - amAM:1h\nX /t/*\n", BASIC),
    "own-line": ("d /t - - - amAM:1h\nf /t/old\nd /t/sub\n", BASIC),
    "e-glob": ("e /t/* - - - amAM:1h\n", BASIC),
    "e-path": ("e /t - - - amAM:1h\n", BASIC),
    "r-ages": (("r /t/old - - - amAM:1h\nr /t/new - - - amAM:1h\nr /t/emptyold - - - amAM:1h\n"
                "r /t/sub - - - amAM:1h\n"), BASIC),
    "R-ages": ("R /t/sub - - - amAM:1h\nR /t/deep - - - amAM:1h\nR /t/emptynew - - - amAM:1h\n", BASIC),
    "R-keep-first": ("R /t/sub - - - ~amAM:1h\n", BASIC),
    "r-glob": ("r /t/*old - - - amAM:1h\n", BASIC),
    "no-age": ("d /t\nR /t/sub\n", BASIC),
    "age-zero": ("d /t - - - amAM:0\n", BASIC),
    "infinity": ("d /t - - - infinity\n", BASIC),
    "missing-dir": ("d /nope - - - am:1h\n", BASIC),
    "path-is-file": ("d /t/old - - - am:1h\n", BASIC),
    "path-is-symlink": ("d /t/link - - - am:1h\nd /t - - - am:10h\n", [*BASIC, Node("t/x", "d", age=OLD)]),
    "child-line-first": ("d /t - - - amAM:1h\nd /t/sub - - - amAM:3h\n", BASIC),
    # ctime (c C) and birth time (b B): "now" when the tree is built (see cleantree.py): new
    # against an age of 1h, old against an age of 0.
    "age-c-new": ("d /t - - - c:1h\n", BASIC),
    "age-b-new": ("d /t - - - b:1h\n", BASIC),
    "age-mc-new": ("d /t - - - mc:1h\n", BASIC),
    "age-mb-new": ("d /t - - - mb:1h\n", BASIC),
    "age-C-new": ("d /t - - - amC:1h\n", BASIC),
    "age-B-new": ("d /t - - - amB:1h\n", BASIC),
    "age-MC-new": ("d /t - - - amMC:1h\n", BASIC),
    "age-MB-new": ("d /t - - - amMB:1h\n", BASIC),
    "age-c-old": ("d /t - - - c:0\n", BASIC),
    "age-b-old": ("d /t - - - b:0\n", BASIC),
    "age-cC-old": ("d /t - - - cC:0\n", BASIC),
    "age-bB-old": ("d /t - - - bB:0\n", BASIC),
    "age-default-old": ("d /t - - - 0\n", BASIC),
    "r-age-c": ("r /t/old - - - c:1h\nr /t/new - - - c:0\nr /t/emptyold - - - C:1h\nr /t/emptynew - - - B:0\n", BASIC),
    "R-age-bB": ("R /t/sub - - - bB:1h\nR /t/deep - - - bB:0\n", BASIC),
}


def run_oracle(binary: Path, root: Path, conf: Path, *ops: str) -> int:
    proc = subprocess.run([str(binary), f"--root={root}", *(ops or ("--clean",)), str(conf)],
                          capture_output=True, check=False)
    return proc.returncode


def run_ours(root: Path, conf: Path, *ops: str, dry_run: bool = False, workers: int = 1) -> int:
    """``workers`` > 1: the walk hands its directories to that many worker processes from the
    first entry on (parallel_after=1), where the command line waits for a big tree."""
    ops = ops or ("--clean",)
    config = load(LoadOptions(configs=(str(conf),), root=str(root)), stderr_reporter(Level.ERR))
    fd = open_root(str(root))
    try:
        ok = sweep(config, fd, clean="--clean" in ops, remove="--remove" in ops, purge="--purge" in ops,
                   root=str(root), dry_run=dry_run, workers=workers, parallel_after=1)
    finally:
        os.close(fd)
    if config.invalid:
        return 65
    return 0 if ok else 73


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_clean_matches_systemd(name, workers, tmp_path, oracles):
    text, nodes = CASES[name]
    conf = tmp_path / "case.conf"
    conf.write_text(text)
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    for root in (theirs, ours):
        root.mkdir()
        build(root, nodes)
    rc_theirs = run_oracle(oracles / "systemd-tmpfiles-new", theirs, conf)
    rc_ours = run_ours(ours, conf, workers=workers)
    assert snapshot(ours) == snapshot(theirs)
    assert rc_ours == rc_theirs


# Chains of directories deeper than the walk's limit (256 levels below the line's path), with
# paths longer than PATH_MAX. systemd does not enter the directory at level 257 (it warns
# "Reached max depth") but still tries rmdir on it when it is old: an empty one goes, and then
# the whole old chain above it.
DEEP_CASES: dict[str, tuple[str, str, int, Node | None]] = {
    # name: (config, operation, chain depth, leaf in the deepest directory)
    "clean-256-file": ("d /t - - - amAM:1h\n", "--clean", 256, Node("f", age=OLD)),
    "clean-257-empty": ("d /t - - - amAM:1h\n", "--clean", 257, None),
    "clean-257-file": ("d /t - - - amAM:1h\n", "--clean", 257, Node("f", age=OLD)),
    "clean-256-young-dir": ("d /t - - - amAM:1h\n", "--clean", 256, Node("young", "d", age=NEW)),
    "clean-256-old-dir": ("d /t - - - amAM:1h\n", "--clean", 256, Node("old", "d", age=OLD)),
    "clean-258-empty": ("d /t - - - amAM:1h\n", "--clean", 258, None),
    "D-remove-257-empty": ("D /t\n", "--remove", 257, None),
    "D-remove-257-file": ("D /t\n", "--remove", 257, Node("f", age=OLD)),
    "R-remove-257-empty": ("R /t\n", "--remove", 257, None),
    "R-clean-257-empty": ("R /t - - - amAM:1h\n", "--clean", 257, None),
}


@pytest.mark.parametrize("name", sorted(DEEP_CASES))
def test_deeper_than_the_walk_matches_systemd(name, tmp_path, oracles):
    text, op, depth, leaf = DEEP_CASES[name]
    conf = tmp_path / "case.conf"
    conf.write_text(text)
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    for root in (theirs, ours):
        root.mkdir()
        build_deep(root, "t", depth, age=OLD, leaf=leaf)
    rc_theirs = run_oracle(oracles / "systemd-tmpfiles-new", theirs, conf, op)
    rc_ours = run_ours(ours, conf, op)
    assert snapshot(ours) == snapshot(theirs)
    assert rc_ours == rc_theirs
    if name == "clean-257-empty":  # the directory not entered was still removed, then the chain
        assert snapshot(ours) == {"t": "d"}
    if name == "clean-257-file":
        assert len(snapshot(ours)) == 1 + 257 + 1


def test_default_ages_really_remove_old_files(tmp_path):
    """Guard against a vacuous suite: the basic case does remove things."""
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    build(tmp_path / "r", BASIC)
    before = snapshot(tmp_path / "r")
    assert run_ours(tmp_path / "r", conf) == 0
    after = snapshot(tmp_path / "r")
    assert "t/old" in before
    assert "t/old" not in after
    assert {"t/new", "t/sticky", "t/dev", "t/sub/new"} <= after.keys()


@pytest.mark.parametrize(("new", "old"), [("c:1h", "c:0"), ("b:1h", "b:0"), ("amC:1h", "cC:0"), ("amB:1h", "bB:0")])
def test_ctime_and_btime_cases_are_not_vacuous(tmp_path, new, old):
    """The age-c/b/C/B cases really turn on those timestamps: new against 1h, old against 0."""
    what = "t/emptyold" if new.startswith("am") else "t/old"
    results = {}
    for age in (new, old):
        conf = tmp_path / f"{age}.conf"
        conf.write_text(f"d /t - - - {age}\n")
        root = tmp_path / age
        build(root, BASIC)
        assert run_ours(root, conf) == 0
        results[age] = snapshot(root)
    assert what in results[new]
    assert what not in results[old]


def test_locked_file_and_directory_survive(tmp_path, oracles):
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    nodes = [Node("t/locked", age=OLD), Node("t/ld", "d", age=OLD), Node("t/ld/old", age=OLD),
             Node("t/free", age=OLD), Node("t", "d", age=OLD)]
    results = []
    for who in ("theirs", "ours"):
        root = tmp_path / who
        build(root, nodes)
        f = os.open(root / "t/locked", os.O_RDONLY)
        d = os.open(root / "t/ld", os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(f, fcntl.LOCK_EX)
        fcntl.flock(d, fcntl.LOCK_EX)
        try:
            if who == "theirs":
                run_oracle(oracles / "systemd-tmpfiles-new", root, conf)
            else:
                run_ours(root, conf)
        finally:
            os.close(f)
            os.close(d)
        results.append(snapshot(root))
    assert results[0] == results[1]
    assert {"t/locked", "t/ld", "t/ld/old"} <= results[1].keys()
    assert "t/free" not in results[1]


def test_live_socket_survives(tmp_path, short_tmp, oracles):
    """In a short directory: a listening socket's path (what /proc/net/unix shows, and so what
    both tools compare) must fit in 108 bytes, however long the scratch directory's path is."""
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    nodes = [Node("t/dead.sock", "s", age=OLD), Node("t", "d", age=OLD)]
    results = []
    for who in ("theirs", "ours"):
        root = short_tmp / who
        build(root, nodes)
        with listening(root / "t/live.sock"):
            os.utime(root / "t/live.sock", (0, 0), follow_symlinks=False)
            if who == "theirs":
                run_oracle(oracles / "systemd-tmpfiles-new", root, conf)
            else:
                run_ours(root, conf)
            results.append(snapshot(root))
    assert results[0] == results[1]
    assert "t/live.sock" in results[1]
    assert "t/dead.sock" not in results[1]


def test_dry_run_changes_nothing(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\nR /t/sub - - - amAM:1h\n")
    build(tmp_path / "r", BASIC)
    before = {p: os.lstat(tmp_path / "r" / p).st_mtime_ns for p in snapshot(tmp_path / "r")}
    assert run_ours(tmp_path / "r", conf, dry_run=True) == 0
    after = {p: os.lstat(tmp_path / "r" / p).st_mtime_ns for p in snapshot(tmp_path / "r")}
    assert before == after


def test_parent_times_restored(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    build(tmp_path / "r", BASIC)
    sub_before = os.stat(tmp_path / "r/t/sub").st_mtime_ns
    run_ours(tmp_path / "r", conf)
    assert not (tmp_path / "r/t/sub/old").exists()
    assert os.stat(tmp_path / "r/t/sub").st_mtime_ns == sub_before


def test_explain_names_the_reason(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\nx /t/sub\n")
    build(tmp_path / "r", BASIC)
    config = load(LoadOptions(configs=(str(conf),), root=str(tmp_path / "r")), stderr_reporter(Level.ERR))
    seen: list[Decision] = []
    fd = open_root(str(tmp_path / "r"))
    try:
        sweep(config, fd, clean=True, root=str(tmp_path / "r"), dry_run=True, explain=seen.append)
    finally:
        os.close(fd)
    by_path = {d.path: d for d in seen}
    assert by_path["/t/sub"].action == "skip"
    assert "glob" in by_path["/t/sub"].reason
    assert by_path["/t/sticky"].reason.startswith("the sticky bit")
    assert by_path["/t/old"].action == "remove"
    assert by_path["/t/new"].action == "keep"
    assert "modify" in by_path["/t/new"].reason


@pytest.mark.root
@pytest.mark.netns
def test_mount_points_are_not_cleaned(tmp_path, oracles):
    from freshroot.fs.mount import MS, mount
    from tests.nsutil import in_mount_namespace

    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    nodes = [Node("t/mnt", "d", age=OLD), Node("t/bind", "d", age=OLD), Node("t/old", age=OLD),
             Node("t", "d", age=OLD)]

    def body() -> list[dict[str, str]]:
        out = []
        for who in ("theirs", "ours"):
            root = tmp_path / who
            build(root, nodes)
            mount("tmpfs", str(root / "t/mnt"), "tmpfs")
            (root / "t/mnt/inside").write_text("x")
            os.utime(root / "t/mnt/inside", (0, 0))
            mount(str(root / "t/mnt"), str(root / "t/bind"), None, MS.BIND)
            for p in ("t/mnt", "t/bind", "t"):
                os.utime(root / p, (0, 0))
            if who == "theirs":
                run_oracle(oracles / "systemd-tmpfiles-new", root, conf)
            else:
                run_ours(root, conf)
            out.append(snapshot(root))
        return out

    theirs, ours = in_mount_namespace(body)
    assert theirs == ours
    assert {"t/mnt", "t/mnt/inside", "t/bind"} <= ours.keys()
    assert "t/old" not in ours


# On a mount root (the line's own directory is one), systemd keeps a root-owned directory
# lost+found and root-owned regular files .journal, aquota.user and aquota.group; owned by
# someone else, of another type, or one level further down, they are cleaned like anything.
_SPECIALS_BELOW = [Node("t/sub/lost+found", "d", age=OLD), Node("t/sub/aquota.user", age=OLD),
                   Node("t/sub/.journal", age=OLD), Node("t/sub", "d", age=OLD), Node("t/old", age=OLD)]
MOUNT_ROOT_CASES: dict[str, tuple[bool, list[Node]]] = {
    # name: (whether /t is a tmpfs mount, tree)
    "root-owned": (True, [Node("t/lost+found/old", age=OLD), Node("t/lost+found", "d", age=OLD),
                          Node("t/aquota.user", age=OLD), Node("t/aquota.group", age=OLD),
                          Node("t/.journal", age=OLD), *_SPECIALS_BELOW, Node("t", "d", age=OLD)]),
    "user-owned": (True, [Node("t/lost+found/old", age=OLD, uid=1000), Node("t/lost+found", "d", age=OLD, uid=1000),
                          Node("t/aquota.user", age=OLD, uid=1000), Node("t/aquota.group", age=OLD, uid=1000),
                          Node("t/.journal", age=OLD, uid=1000), *_SPECIALS_BELOW, Node("t", "d", age=OLD)]),
    "other-types": (True, [Node("t/lost+found", age=OLD), Node("t/aquota.user", "d", age=OLD),
                           Node("t/aquota.group", "l", age=OLD), Node("t/.journal", "p", age=OLD),
                           *_SPECIALS_BELOW, Node("t", "d", age=OLD)]),
    "not-a-mount": (False, [Node("t/lost+found/old", age=OLD), Node("t/lost+found", "d", age=OLD),
                            Node("t/aquota.user", age=OLD), Node("t/aquota.group", age=OLD),
                            Node("t/.journal", age=OLD), *_SPECIALS_BELOW, Node("t", "d", age=OLD)]),
}


@pytest.mark.root
@pytest.mark.netns
@pytest.mark.parametrize("name", sorted(MOUNT_ROOT_CASES))
def test_mount_root_specials_match_systemd(name, tmp_path, oracles):
    from freshroot.fs.mount import mount
    from tests.nsutil import in_mount_namespace

    is_mount, nodes = MOUNT_ROOT_CASES[name]
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")

    def body() -> list[dict[str, str]]:
        out = []
        for who in ("theirs", "ours"):
            root = tmp_path / who
            (root / "t").mkdir(parents=True)
            if is_mount:
                mount("tmpfs", str(root / "t"), "tmpfs")
            build(root, nodes)
            rc = (run_oracle(oracles / "systemd-tmpfiles-new", root, conf) if who == "theirs"
                  else run_ours(root, conf))
            out.append({**snapshot(root), "exit": str(rc)})
        return out

    theirs, ours = in_mount_namespace(body)
    assert ours == theirs
    kept = {"t/lost+found", "t/lost+found/old", "t/aquota.user", "t/aquota.group", "t/.journal"}
    assert (kept <= ours.keys()) == (name == "root-owned")
    assert not {"t/old", "t/sub"} & ours.keys()


@pytest.mark.root
def test_planted_symlink_in_the_path_is_not_followed(tmp_path, oracles):
    """The deliberate difference: a user-owned directory in the path holds a symlink to a
    root-owned directory; systemd follows it and cleans the target, freshroot does not."""
    conf = tmp_path / "c.conf"
    conf.write_text("d /home/user/cache/x - - - amAM:1h\n")
    results = {}
    for who in ("theirs", "ours"):
        root = tmp_path / who
        build(root, [Node("secret/x/old", age=OLD), Node("secret/x", "d", age=OLD), Node("home/user", "d")])
        os.chown(root / "home/user", 1000, 1000)
        os.symlink("../../secret", root / "home/user/cache")
        os.lchown(root / "home/user/cache", 1000, 1000)
        if who == "theirs":
            run_oracle(oracles / "systemd-tmpfiles-new", root, conf)
        else:
            run_ours(root, conf)
        results[who] = snapshot(root)
    assert "secret/x/old" in results["ours"]
    # systemd 262 resolves the starting path by name and cleans the symlink's target. If this
    # starts failing, systemd fixed it: update src/freshroot/tmpfiles/differences.py (safe-start-clean).
    assert "secret/x/old" not in results["theirs"]


REMOVE_TREE = [
    Node("t/d/x/f"), Node("t/d/y/g"), Node("t/file"), Node("t/link", "l", target="d"),
    Node("t/dangling", "l", target="nowhere"), Node("t/up", "l", target="../.."),
    Node("t/sticky", mode=0o1644), Node("t/d/dev", "c"), Node("t/empty", "d"),
]

REMOVE_CASES = {
    "R-symlinks-files": "R /t/link\nR /t/dangling\nR /t/file\nR /t/up\n",
    "D-with-x": "D /t/d\nx /t/d/x\n",
    "R-with-x": "R /t/d\nx /t/d/x\n",
    "R-with-own-line": "R /t/d\nd /t/d/y\n",
    "r-nonempty-fails": "r /t/d\nr /t/up\nr /t/nonexist\nr /t/fil*\n",
    "r-empty-dir": "r /t/empty\n",
    "R-glob": "R /t/*\nx /t/sticky\n",
    "R-devices-sticky": "R /t\n",
    "D-boot-only": "D! /t/d\n",
    "remove-and-clean": "R /t/d/y\nd /t - - - amAM:0\n",
}


@pytest.mark.root
@pytest.mark.parametrize("name", sorted(REMOVE_CASES))
def test_remove_matches_systemd(name, tmp_path, oracles):
    conf = tmp_path / "case.conf"
    conf.write_text(REMOVE_CASES[name])
    ops = ("--remove", "--clean") if name == "remove-and-clean" else ("--remove",)
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    for root in (theirs, ours):
        root.mkdir()
        build(root, REMOVE_TREE)
    rc_theirs = run_oracle(oracles / "systemd-tmpfiles-new", theirs, conf, *ops)
    rc_ours = run_ours(ours, conf, *ops)
    assert snapshot(ours) == snapshot(theirs)
    assert rc_ours == rc_theirs


PURGE_CASES = {
    "purge-marked-only": "d$ /a\nf$ /a/x\nd /b\n",
    "purge-with-x": "d$ /c\nx /c/keep\n",
    "purge-glob-w": "w$ /b/* - - - - data\n",
    "purge-symlink-not-followed": "L$ /l - - - - b\n",
}
PURGE_TREE = [Node("a/x"), Node("a/y"), Node("b/f"), Node("c/keep/f"), Node("c/drop/f"), Node("l", "l", target="b")]


@pytest.mark.parametrize("name", sorted(PURGE_CASES))
def test_purge_matches_systemd(name, tmp_path, oracles):
    conf = tmp_path / "case.conf"
    conf.write_text(PURGE_CASES[name])
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    for root in (theirs, ours):
        root.mkdir()
        build(root, PURGE_TREE)
    rc_theirs = run_oracle(oracles / "systemd-tmpfiles-new", theirs, conf, "--purge")
    rc_ours = run_ours(ours, conf, "--purge")
    assert snapshot(ours) == snapshot(theirs)
    assert rc_ours == rc_theirs
