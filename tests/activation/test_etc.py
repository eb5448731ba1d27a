"""The etc step: written atomically, idempotent, hand edits reported, dropped files removed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from freshroot.plan.result import Status

from .helpers import apply, make_root, write_decl

DECL = '''
[etc."motd"]
text = "hello\\n"

[etc."app/app.conf"]
text = "x = 1\\n"
mode = "0600"

[etc."localtime"]
source = "/usr/share/zoneinfo/UTC"
mode = "symlink"
'''


def test_write_link_and_idempotent(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL)
    report = apply(root, decl)
    assert report.ok, report.render()
    assert (root / "etc/motd").read_text() == "hello\n"
    assert (root / "etc/app/app.conf").stat().st_mode & 0o7777 == 0o600
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/UTC"
    manifest = json.loads((root / "etc/.freshroot-manifest.json").read_text())
    assert set(manifest["files"]) == {"/etc/motd", "/etc/app/app.conf", "/etc/localtime"}
    assert apply(root, decl).result("etc").status is Status.UNCHANGED


def test_drift_of_mode_is_repaired(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL)
    apply(root, decl)
    os.chmod(root / "etc/app/app.conf", 0o644)
    assert apply(root, decl).result("etc").status is Status.CHANGED
    assert (root / "etc/app/app.conf").stat().st_mode & 0o7777 == 0o600


def test_hand_edit_is_reported_not_overwritten_unless_fixed(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL)
    apply(root, decl)
    (root / "etc/motd").write_text("mine\n")
    report = apply(root, decl)
    assert (root / "etc/motd").read_text() == "mine\n"
    assert any("changed by hand" in line for line in report.result("etc").output)
    apply(root, decl, fix=True)
    assert (root / "etc/motd").read_text() == "hello\n"


def test_preexisting_file_is_kept_aside(tmp_path):
    root = make_root(tmp_path / "root")
    (root / "etc/motd").write_text("debian's\n")
    apply(root, write_decl(tmp_path, DECL))
    assert (root / "etc/motd").read_text() == "hello\n"
    assert (root / "etc/motd.freshroot-orig").read_text() == "debian's\n"


def test_dropped_file_is_removed_unless_edited(tmp_path):
    root = make_root(tmp_path / "root")
    apply(root, write_decl(tmp_path, DECL))
    (root / "etc/app/app.conf").write_text("edited\n")
    report = apply(root, write_decl(tmp_path, '[etc."other"]\ntext = "o"\n'))
    assert report.ok, report.render()
    assert not (root / "etc/motd").exists()
    assert not (root / "etc/localtime").exists()
    assert (root / "etc/app/app.conf").read_text() == "edited\n"
    assert (root / "etc/other").read_text() == "o"
    manifest = json.loads((root / "etc/.freshroot-manifest.json").read_text())
    assert set(manifest["files"]) == {"/etc/other"}


def test_bad_path_is_a_config_error(tmp_path, capsys):
    from freshroot.cli import main

    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '\n[etc."../shadow"]\ntext = "x"\n')
    assert main(["plan", "--root", str(root), "--config", decl]) == 65
    assert f"{decl}:2:" in capsys.readouterr().err


def test_owner_and_force(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL + '''
[users.svc]
system = true

[etc."svc.conf"]
text = "token = 1\\n"
mode = "0640"
user = "root"
group = "svc"
force = true
''')
    report = apply(root, decl)
    assert report.ok, report.render()
    gid = next(int(line.split(":")[2]) for line in (root / "etc/group").read_text().splitlines()
               if line.startswith("svc:"))
    st = (root / "etc/svc.conf").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, gid, 0o640)
    (root / "etc/svc.conf").write_text("token = mine\n")
    (root / "etc/motd").write_text("mine\n")
    report = apply(root, decl)  # no --fix: only the forced file is put back
    assert (root / "etc/svc.conf").read_text() == "token = 1\n"
    assert (root / "etc/motd").read_text() == "mine\n"
    assert (root / "etc/svc.conf").stat().st_gid == gid


# --- source: copied unless mode = "symlink" (issue 14, #8) ---------------------------------

SOURCE_DECL = '''
[users.svc]
system = true

[etc."app/token"]
source = "/usr/share/app/token"
mode = "0640"
user = "root"
group = "svc"
'''


def _gid(root: Path, name: str) -> int:
    return next(int(line.split(":")[2]) for line in (root / "etc/group").read_text().splitlines()
                if line.startswith(f"{name}:"))


def test_source_is_copied_with_the_declared_mode_and_owner(tmp_path):
    """Failed on the old code: every source became a symlink, mode and owner ignored."""
    root = make_root(tmp_path / "root")
    (root / "usr/share/app").mkdir(parents=True)
    (root / "usr/share/app/token").write_text("one\n")
    decl = write_decl(tmp_path, SOURCE_DECL)
    report = apply(root, decl)
    assert report.ok, report.render()
    made = root / "etc/app/token"
    assert not made.is_symlink()
    st = made.stat()
    assert (made.read_text(), st.st_uid, st.st_gid, st.st_mode & 0o7777) == ("one\n", 0, _gid(root, "svc"), 0o640)
    assert apply(root, decl).result("etc").status is Status.UNCHANGED  # idempotent
    (root / "usr/share/app/token").write_text("two\n")  # the source changes: copied again
    assert apply(root, decl).result("etc").status is Status.CHANGED
    assert made.read_text() == "two\n"
    assert made.stat().st_mode & 0o7777 == 0o640
    assert apply(root, decl).result("etc").status is Status.UNCHANGED


def _as_user(fn: Callable[[], None]) -> None:
    from tests.fs.helpers import USER, in_child

    in_child(fn, uid=USER)


def test_a_users_source_is_never_linked_nor_followed_to_shadow(tmp_path):
    """A user-owned source: a symlink into the user's files (the old code) would let them point
    it at /etc/shadow later for root-run readers. Copied, the content is taken through chase
    with SAFE, so the user's symlink to shadow is refused, and /etc gets no link at all."""
    from tests.fs.helpers import USER

    root = make_root(tmp_path / "root")
    (root / "etc/shadow").write_text("root:SECRET:1::::::\n")
    os.chmod(root / "etc/shadow", 0o600)
    home = root / "home/alice"
    home.mkdir(parents=True)
    os.chown(home, USER, USER)
    decl = write_decl(tmp_path, '[etc."motd.d/alice"]\nsource = "/home/alice/motd"\n')

    dfd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)  # the scratch path above is root's 0700

    def plant() -> None:
        os.symlink("/etc/shadow", "motd", dir_fd=dfd)  # planted by the unprivileged user

    try:
        _as_user(plant)
    finally:
        os.close(dfd)
    assert (home / "motd").lstat().st_uid == USER
    report = apply(root, decl)
    assert not report.ok
    assert "/home/alice/motd" in (report.result("etc").error or "")
    assert not (root / "etc/motd.d/alice").is_symlink()
    assert not (root / "etc/motd.d/alice").exists()


def test_symlink_into_a_tree_not_roots_all_the_way_is_refused(tmp_path, capsys):
    """mode = "symlink" to a file under a user's directory (or a world-writable one) is refused
    with file:line and nothing changes; a link into root's own tree is made. Failed on the old
    code, which linked it."""
    from freshroot.cli import main
    from tests.fs.helpers import USER

    root = make_root(tmp_path / "root")
    (root / "home/alice").mkdir(parents=True)
    (root / "home/alice/motd").write_text("hi\n")
    os.chown(root / "home/alice", USER, USER)
    (root / "srv/open").mkdir(parents=True)
    os.chmod(root / "srv/open", 0o1777)
    (root / "usr/share/zoneinfo").mkdir(parents=True)
    (root / "usr/share/zoneinfo/UTC").write_text("TZif")
    (root / "usr/lib/tz").mkdir(parents=True)
    os.symlink("../share/zoneinfo/UTC", root / "usr/lib/tz/UTC")
    for source, why in (("/home/alice/motd", "owned by uid 1000"), ("/srv/open/motd", "writable by users"),
                        ("/home/alice/missing", "owned by uid 1000")):
        decl = write_decl(tmp_path, f'\n[etc."motd"]\nsource = "{source}"\nmode = "symlink"\n')
        assert main(["apply", "--root", str(root), "--config", decl]) != 0
        err = capsys.readouterr()
        assert f"{decl}:2:" in err.out + err.err
        assert why in err.out + err.err
        assert not os.path.lexists(root / "etc/motd")
    # A link reached through a link whose directory is a user's is refused too.
    os.symlink("/home/alice/motd", root / "usr/lib/tz/alias")
    decl = write_decl(tmp_path, '\n[etc."motd"]\nsource = "/usr/lib/tz/alias"\nmode = "symlink"\n')
    assert main(["apply", "--root", str(root), "--config", decl]) != 0
    assert "owned by uid 1000" in "".join(capsys.readouterr())
    decl = write_decl(tmp_path, '\n[etc."localtime"]\nsource = "/usr/lib/tz/UTC"\nmode = "symlink"\n')
    assert main(["apply", "--root", str(root), "--config", decl]) == 0, capsys.readouterr()
    assert os.readlink(root / "etc/localtime") == "/usr/lib/tz/UTC"


def test_a_fifo_source_is_refused_without_hanging(tmp_path):
    """The source is opened O_NONBLOCK and must be a regular file: a FIFO swapped in by its
    owner never hangs apply (the old code blocked in open)."""
    import signal

    root = make_root(tmp_path / "root")
    (root / "usr/share/app").mkdir(parents=True)
    os.mkfifo(root / "usr/share/app/token")
    decl = write_decl(tmp_path, SOURCE_DECL)
    signal.alarm(20)  # a hang fails the test instead of the run
    try:
        report = apply(root, decl)
    finally:
        signal.alarm(0)
    assert not report.ok
    assert "not a regular file" in (report.result("etc").error or "")
    assert not (root / "etc/app/token").exists()
