"""The deliberate differences (freshroot.tmpfiles.differences): each has a test here that runs
both tools and shows systemd doing one thing and freshroot the documented other."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from freshroot.tmpfiles.differences import DIFFERENCES, by_name
from tests.tmpfiles.attacks import attack
from tests.tmpfiles.harness import Case, D, F, L, Outcome, apply_both
from tests.tmpfiles.syntax_oracle import clean_env, make_root, our_created_paths, run_ours, run_reference, would_paths

pytestmark = [pytest.mark.oracle, pytest.mark.root]

# Absolute paths that exist inside the scratch roots and (checked) nowhere on the host.
ABSENT_ON_HOST = "/freshroot-difference-test-target"
# The venv entry point, as users run it (the attack tests run both tools as programs).
OURS = [str(Path(sys.executable).with_name("freshroot-tmpfiles"))]
REPO = Path(__file__).resolve().parents[2]


def test_every_difference_has_its_test() -> None:
    here = sys.modules[__name__]
    for d in DIFFERENCES:
        assert callable(getattr(here, d.test, None)), f"{d.name}: no test named {d.test}"
    assert len({d.name for d in DIFFERENCES}) == len(DIFFERENCES)


def test_docs_point_at_the_single_list() -> None:
    """docs/tmpfiles.md and docs/tmpfiles-clean.md name differences.py and copy no entry."""
    for doc in ("docs/tmpfiles.md", "docs/tmpfiles-clean.md"):
        text = (REPO / doc).read_text()
        assert "src/freshroot/tmpfiles/differences.py" in text, f"{doc} does not point at the list"
        for d in DIFFERENCES:
            assert f"| {d.name} |" not in text, f"{doc} keeps its own row for {d.name}"
            assert d.systemd not in text, f"{doc} repeats the entry {d.name}"


def _host_clean() -> None:
    assert not Path(ABSENT_ON_HOST).exists(), f"{ABSENT_ON_HOST} exists on the host: the test cannot tell"


def test_glob_through_absolute_symlink_stays_in_root(oracles: Path, scratch: Path) -> None:
    _host_clean()
    by_name("glob-symlinks-inside-root")  # raises KeyError if the table lost the entry
    tree = (D("/g"), D(ABSENT_ON_HOST), D(f"{ABSENT_ON_HOST}/sub"), F(f"{ABSENT_ON_HOST}/sub/f", mode=0o644),
            L("/g/link", ABSENT_ON_HOST))
    case = Case("glob-abs-link", "z /g/link/sub/* 0600\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    target = f"{ABSENT_ON_HOST}/sub/f"
    assert theirs.tree[target]["mode"] == "0644", "systemd looked for the pattern on the host and matched nothing"
    assert ours.tree[target]["mode"] == "0600", "freshroot resolved the symlink inside the root"
    assert theirs.status == ours.status == 0


def test_w_through_absolute_symlink_writes_inside_root(oracles: Path, scratch: Path) -> None:
    _host_clean()
    by_name("w-follows-inside-root")  # raises KeyError if the table lost the entry
    tree = (D("/t"), D(ABSENT_ON_HOST), F(f"{ABSENT_ON_HOST}/file", "old"), L("/t/x", f"{ABSENT_ON_HOST}/file"))
    case = Case("w-abs-link", "w /t/x - - - - new\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    target = f"{ABSENT_ON_HOST}/file"
    assert theirs.tree[target]["size"] == 3
    assert ours.tree[target]["size"] == 3
    assert theirs.tree[target]["sha256"] != ours.tree[target]["sha256"], "freshroot wrote the root's file"
    assert not Path(ABSENT_ON_HOST).exists()


@pytest.mark.parametrize("sticky", [False, True], ids=["own-directory", "sticky-directory"])
def test_w_does_not_follow_a_users_symlink_to_roots_file(sticky: bool, oracles: Path, scratch: Path) -> None:
    by_name("w-last-component-safe")  # raises KeyError if the table lost the entry
    home = (D("/home"), D("/home/mallory", 0o1777, 0, 0) if sticky else D("/home/mallory", 0o755, 1000, 1000))
    tree = (*home, F("/secret", "root's\n", 0o644), L("/home/mallory/link", "../../secret", 1000, 1000),
            F("/home/mallory/mine", "mine\n", 0o644, 1000, 1000), L("/home/mallory/ok", "mine", 1000, 1000))
    case = Case("w-user-link", "w /home/mallory/link - - - - pwned\nw /home/mallory/ok - - - - fine\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    untouched = hashlib.sha256(b"root's\n").hexdigest()[:16]
    assert ours.tree["/secret"]["sha256"] == untouched, "freshroot did not write root's file"
    assert ours.tree["/home/mallory/mine"]["sha256"] == theirs.tree["/home/mallory/mine"]["sha256"] != \
        hashlib.sha256(b"mine\n").hexdigest()[:16], "the user's link to the user's own file is followed"
    assert ours.status == 73
    if not sticky:
        assert theirs.tree["/secret"]["sha256"] != untouched, "systemd followed the user's symlink into root's file"
        assert theirs.status == 0


def test_unsafe_transition_message(oracles: Path, scratch: Path) -> None:
    by_name("unsafe-transition-message")  # raises KeyError if the table lost the entry
    tree = (D("/h"), D("/h/u", 0o755, 1000, 0), D("/h/u/b"))
    case = Case("unsafe-message", "z /h/u/b 0700\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    assert "Detected unsafe path transition" in theirs.stderr
    assert "during canonicalization of" in theirs.stderr
    assert "refusing to follow" in ours.stderr
    assert "/h/u/b" in ours.stderr
    assert theirs.status == ours.status == 73
    assert theirs.tree["/h/u/b"]["mode"] == ours.tree["/h/u/b"]["mode"] == "0755"


def test_eq_parents_follow_absolute_symlink_inside_root(oracles: Path, scratch: Path) -> None:
    _host_clean()
    by_name("eq-parents-follow-inside-root")  # raises KeyError if the table lost the entry
    tree = (D("/t"), D(ABSENT_ON_HOST), F(f"{ABSENT_ON_HOST}/file", "old"), L("/t/x", f"{ABSENT_ON_HOST}/file"))
    case = Case("eq-abs-link", "f+= /t/x/y - - - - new\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    # systemd looked for the host's target, found none, and names the link itself; freshroot
    # names the root's file. Both remove the link and create the file below a new directory.
    assert "Wrong file type 0o120000" in theirs.stderr
    assert "Wrong file type 0o100000" in ours.stderr
    assert ours.tree["/t/x/y"]["type"] == theirs.tree["/t/x/y"]["type"]
    assert ours.tree[f"{ABSENT_ON_HOST}/file"] == theirs.tree[f"{ABSENT_ON_HOST}/file"]  # the target untouched
    assert not Path(ABSENT_ON_HOST).exists()


def test_acl_names_resolve_in_target_root(oracles: Path, scratch: Path) -> None:
    by_name("acl-names-in-root")  # raises KeyError if the table lost the entry
    import pwd

    with pytest.raises(KeyError):
        pwd.getpwnam("alice")  # the harness's alice exists only in the scratch roots
    case = Case("acl-name", "a /t/f - - - - u:alice:rwx\n", (D("/t"), F("/t/f")))
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    assert "system.posix_acl_access" not in theirs.tree["/t/f"]["xattrs"]  # type: ignore[operator]
    acl = ours.tree["/t/f"]["xattrs"]["system.posix_acl_access"]  # type: ignore[index]
    assert "e8030000" in acl, "user:1000 (alice in the root's passwd) is in freshroot's ACL"
    assert theirs.status == ours.status == 0


def test_user_owned_symlink_is_not_followed(oracles: Path, scratch: Path) -> None:
    by_name("safe-symlink-owner")  # raises KeyError if the table lost the entry
    tree = (D("/h"), D("/h/a"), L("/h/b", "a", 1000, 1000))
    case = Case("user-link", "f /h/b/x - - - - data\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    assert "/h/a/x" in theirs.tree, "systemd followed the user's symlink (the directory holding it is root's)"
    assert "/h/a/x" not in ours.tree, "freshroot refused it"
    assert (theirs.status, ours.status) == (0, 73)


def test_copy_into_itself_stops(scratch: Path) -> None:
    """Only freshroot runs here: systemd's side makes a tree thousands of levels deep."""
    by_name("copy-into-itself")  # raises KeyError if the table lost the entry
    from tests.tmpfiles.harness import materialize, run_freshroot

    root = scratch / "root"
    materialize(root, (D("/h"), D("/h/a"), F("/h/a/f", "x")))
    conf = scratch / "c.conf"
    conf.write_text("C /h/a/a - - - - /h/a\n")
    status, _ = run_freshroot(root, conf, Case("c", ""))
    assert status == 0
    assert (root / "h/a/a/f").read_text() == "x"
    assert not (root / "h/a/a/a").exists()


def test_caps_plus_over_existing_capabilities(oracles: Path, scratch: Path) -> None:
    by_name("caps-plus-existing")  # raises KeyError if the table lost the entry
    import struct

    case = Case("k-plus", "k /t/f - - - - cap_net_raw+p\nk+ /t/f - - - - cap_kill+p\n", (D("/t"), F("/t/f", "x")))
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    assert theirs.status == ours.status == 0

    def caps(outcome: Outcome) -> tuple[int, int, int | None]:
        value = bytes.fromhex(outcome.tree["/t/f"]["xattrs"]["security.capability"])  # type: ignore[index]
        magic, permitted = struct.unpack_from("<II", value)
        rootid = struct.unpack_from("<I", value, 20)[0] if len(value) >= 24 else None
        return magic >> 24, permitted, rootid

    both = (1 << 13) | (1 << 5)  # cap_net_raw and cap_kill, permitted
    revision, permitted, rootid = caps(theirs)
    assert (revision, permitted) == (3, both), "systemd wrote revision 3"
    assert rootid, "with a namespace root uid"
    assert caps(ours) == (2, both, None), "freshroot wrote revision 2"


# --- the starting path of the remove, clean and purge walks (tests/tmpfiles/attacks.py) -------

Fingerprint = dict[str, tuple[object, ...]]


def _attack_both(oracles: Path, scratch: Path, line: str, op: str, *, in_root_dir: bool = False,
                 ) -> tuple[tuple[int, Fingerprint, Fingerprint], tuple[int, Fingerprint, Fingerprint]]:
    """(status, /secret before, after) for systemd and for freshroot; freshroot's side is
    checked here: it changed nothing and failed the line (exit 73)."""
    theirs = attack([str(oracles / "systemd-tmpfiles-new")], scratch / "systemd", line, op, in_root_dir=in_root_dir)
    ours = attack(OURS, scratch / "freshroot", line, op, in_root_dir=in_root_dir)
    assert ours[2] == ours[1], "freshroot did not follow the symlink: /secret is unchanged"
    assert ours[0] == 73, "freshroot failed the line"
    assert theirs[0] == 0
    return theirs, ours


def test_remove_path_start_is_walked_safely(oracles: Path, scratch: Path) -> None:
    by_name("safe-start-r")
    (_, before, after), _ = _attack_both(oracles, scratch, "r {p}/target", "--remove")
    assert "secret/target" in before
    assert "secret/target" not in after, "systemd followed the link and removed root's file"


def test_recursive_remove_start_is_walked_safely(oracles: Path, scratch: Path) -> None:
    by_name("safe-start-R")
    (_, before, after), _ = _attack_both(oracles, scratch, "R {p}/dir", "--remove")
    assert "secret/dir/file" in before
    assert "secret/dir" not in after, "systemd followed the link and removed root's directory"


def test_truncate_directory_start_is_walked_safely(oracles: Path, scratch: Path) -> None:
    by_name("safe-start-D")
    (_, _, after), _ = _attack_both(oracles, scratch, "D {p}/dir", "--remove")
    assert "secret/dir" in after
    assert "secret/dir/file" not in after, "systemd followed the link and emptied root's directory"


def test_empty_directory_start_is_walked_safely(oracles: Path, scratch: Path) -> None:
    by_name("safe-start-e")
    (_, _, after), _ = _attack_both(oracles, scratch, "e {p}/dir - - - 0", "--clean")
    assert "secret/dir/file" not in after, "systemd followed the link and cleaned root's directory"


@pytest.mark.parametrize("line", ["d {p}/dir - - - 0", "D {p}/dir - - - 0", "v {p}/dir - - - 0",
                                  "q {p}/dir - - - 0", "Q {p}/dir - - - 0", "C {p}/dir - - - 0 /src"])
def test_clean_walk_start_is_walked_safely(oracles: Path, scratch: Path, line: str) -> None:
    by_name("safe-start-clean")
    (_, _, after), _ = _attack_both(oracles, scratch, line, "--clean")
    assert "secret/dir/file" not in after, "systemd followed the link and cleaned root's directory"


def test_purge_start_is_walked_safely(oracles: Path, scratch: Path) -> None:
    by_name("safe-start-purge")
    (_, _, after), _ = _attack_both(oracles, scratch, "d$ {p}/dir", "--purge")
    assert "secret/dir" not in after, "systemd followed the link and purged root's directory"


# --- the starting path of recursive Z T A H K: a user's symlink in a root-owned directory -----
# (With attacks.py's first set-up, the link in the user's own directory, both tools refuse.)

def test_recursive_relabel_start_user_symlink(oracles: Path, scratch: Path) -> None:
    by_name("recursive-Z-user-symlink")
    (_, _, after), _ = _attack_both(oracles, scratch, "Z {p}/dir 0777 1000 1000", "--create", in_root_dir=True)
    assert after["secret/dir"][:3] == (0o40777, 1000, 1000), "systemd gave root's directory to uid 1000"
    assert after["secret/dir/file"][1:3] == (1000, 1000), "and everything in it"


def test_recursive_xattr_start_user_symlink(oracles: Path, scratch: Path) -> None:
    by_name("recursive-T-user-symlink")
    (_, _, after), _ = _attack_both(oracles, scratch, "T {p}/dir - - - - user.pwned=1", "--create",
                                    in_root_dir=True)
    for p in ("secret/dir", "secret/dir/file"):
        assert ("user.pwned", b"1") in after[p][4], f"systemd set the xattr on {p}"  # type: ignore[operator]


def test_recursive_acl_start_user_symlink(oracles: Path, scratch: Path) -> None:
    by_name("recursive-A-user-symlink")
    (_, _, after), _ = _attack_both(oracles, scratch, "A {p}/dir - - - - u:1000:rwx", "--create", in_root_dir=True)
    for p in ("secret/dir", "secret/dir/file"):
        names = {k for k, _ in after[p][4]}  # type: ignore[attr-defined]
        assert "system.posix_acl_access" in names, f"systemd gave uid 1000 an ACL entry on {p}"


def test_recursive_attribute_start_user_symlink(oracles: Path, scratch: Path) -> None:
    by_name("recursive-H-user-symlink")
    (_, before, after), _ = _attack_both(oracles, scratch, "H {p}/dir - - - - +A", "--create", in_root_dir=True)
    no_atime = 0x80  # FS_NOATIME_FL, chattr +A
    for p in ("secret/dir", "secret/dir/file"):
        assert not int(before[p][5]) & no_atime  # type: ignore[call-overload]
        assert int(after[p][5]) & no_atime, f"systemd set +A on {p}"  # type: ignore[call-overload]


def test_recursive_capability_start_user_symlink(oracles: Path, scratch: Path) -> None:
    by_name("recursive-K-user-symlink")
    (_, _, after), _ = _attack_both(oracles, scratch, "K {p}/dir - - - - cap_net_raw=ep", "--create",
                                    in_root_dir=True)
    names = {k for k, _ in after["secret/dir/file"][4]}  # type: ignore[attr-defined]
    assert "security.capability" in names, "systemd set a capability on root's file"


def test_config_files_resolve_inside_root(oracles: Path, scratch: Path,
                                          capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """An offline NixOS-style root: /etc/tmpfiles.d entries are absolute symlinks into the store."""
    _host_clean()
    by_name("conf-files-inside-root")  # raises KeyError if the table lost the entry
    from freshroot.tmpfiles.commands import build_parser
    from freshroot.tmpfiles.load import run_cat

    root = make_root(scratch / "root")
    store = root / ABSENT_ON_HOST.lstrip("/")
    store.mkdir()
    (store / "nix.conf").write_text("d /from-the-root-store\n")
    etc, lib = root / "etc/tmpfiles.d", root / "usr/lib/tmpfiles.d"
    etc.mkdir()
    lib.mkdir(parents=True)
    os.symlink(f"{ABSENT_ON_HOST}/nix.conf", etc / "nix.conf")  # only in the root
    (lib / "nix.conf").write_text("d /lib-nix\n")
    os.symlink("../" * 20 + f"{ABSENT_ON_HOST.lstrip('/')}/nix.conf", etc / "climb.conf")  # '..' stops at /
    host = scratch / "both.conf"  # in the root and on the host, with different lines
    host.write_text("d /from-the-host\n")
    (root / str(scratch).lstrip("/")).mkdir(parents=True)
    (root / str(host).lstrip("/")).write_text("d /from-the-root\n")
    os.symlink(host, etc / "both.conf")

    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create"])
    ours, config = run_ours(root, [])
    # systemd lists nix.conf and climb.conf inside the root (nix.conf hides /usr/lib's), then
    # opens the root-joined path on the host: not there, silently skipped; both.conf is the host's.
    assert would_paths(ref, root) == {"/from-the-host"}
    assert our_created_paths(config) == {"/from-the-root-store", "/from-the-root"}
    assert ref.rc == ours.rc == 0

    theirs = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--root={root}", "--cat-config"],
                            capture_output=True, env=clean_env(), check=False)
    rc = run_cat(build_parser().parse_args([f"--root={root}", "--cat-config"]))
    out = capfdbinary.readouterr()
    assert (theirs.returncode, rc) == (1, 0)
    assert f"Failed to chase '{root}/etc/tmpfiles.d/nix.conf': No such file or directory".encode() in theirs.stderr
    assert f"# {root}/etc/tmpfiles.d/nix.conf -> {store}/nix.conf\nd /from-the-root-store\n".encode() in out.out
    assert f"# {root}/etc/tmpfiles.d/both.conf -> {host}\nd /from-the-host\n".encode() in theirs.stdout
    assert f"# {root}/etc/tmpfiles.d/both.conf -> {root}{host}\nd /from-the-root\n".encode() in out.out
    assert out.err == b""


def test_clean_workers_remove_what_systemd_removes(oracles: Path, scratch: Path) -> None:
    """The command line's own threshold: a tree past it (25 directories of 1,000 files, every
    other one old) is cleaned with two workers, and leaves what systemd's walk leaves."""
    by_name("clean-workers")
    from freshroot.tmpfiles.clean import PARALLEL_AFTER

    now = time.time()
    conf = scratch / "clean.conf"
    conf.write_text("d /t - - - am:1h\n")
    roots = {side: scratch / side for side in ("theirs", "ours", "one")}
    for root in roots.values():
        for d in range(25):
            directory = root / "t" / f"d{d:02d}"
            directory.mkdir(parents=True)
            for f in range(1000):
                path = directory / f"f{f:04d}"
                path.touch()
                if f % 2 == 0:
                    os.utime(path, (now - 7200, now - 7200))
        os.utime(root / "t" / "d03", (now - 7200, now - 7200))
    assert PARALLEL_AFTER < 25 * 1000  # the tree is past the threshold
    before = {side: {d: (root / "t" / d).stat().st_mtime_ns for d in ("d00", "d03", "d24")}
              for side, root in roots.items()}
    env = {**clean_env(), "FRESHROOT_CLEAN_WORKERS": "2"}
    runs = {
        "theirs": [str(oracles / "systemd-tmpfiles-new")],
        "ours": OURS,
        "one": OURS,
    }
    status = {}
    for side, argv in runs.items():
        side_env = {**env, "FRESHROOT_CLEAN_WORKERS": "1"} if side == "one" else env
        proc = subprocess.run([*argv, f"--root={roots[side]}", "--clean", str(conf)], env=side_env,
                              capture_output=True, check=False)
        status[side] = (proc.returncode, proc.stderr)

    def left(root: Path) -> list[str]:
        return sorted(os.path.relpath(os.path.join(d, n), root) for d, ds, fs in os.walk(root) for n in ds + fs)

    assert status["ours"] == status["one"] == status["theirs"] == (0, b"")
    assert left(roots["ours"]) == left(roots["theirs"]) == left(roots["one"])
    assert len(left(roots["ours"])) == 1 + 25 + 25 * 500
    # The directories' times are restored after the workers removed from them, as systemd does.
    for side, root in roots.items():
        assert {d: (root / "t" / d).stat().st_mtime_ns for d in before[side]} == before[side], side
