"""One failure stays local (issue 15 #4): each persisted entry, /etc file, snippet and tmpfiles
line succeeds or fails on its own, the report names every failure, everything else is applied
(the other snippets too, one that runs after persist included), and the steps after
(tmpfiles) still run; exit 1.

And the SAFE rule for what sits in a user's storage directory: a plain file root made there
(one link, root's) is the user's state and is bound; a symlink or a hard link the user
planted is never followed or bound."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from freshroot.cli import main
from tests.nsutil import in_mount_namespace
from tests.persist.helpers import is_mounted, make_root

DECLARATION = """\
[persist."/persist"]
directories = ["/var/log", "/var/lib/app", "/srv/blocked"]
files = ["/etc/machine-id"]

[persist."/persist".users.alice]
home = "/home/alice"
directories = [".ssh"]
files = [".bashrc", ".profile", ".hard"]

[etc.motd]
text = "hello\\n"

[etc.issue]
text = "a directory is in the way\\n"

[tmpfiles]
rules = [
    "d /var/lib/made-by-tmpfiles 0755 root root -",
    "f /srv/blocked/inside 0644 root root - x",
]

[activation.broken]
text = "false"

[activation.fine]
text = 'echo ran > "$FRESHROOT_ROOT/snippet-ran"'

[activation.after-persist]
deps = ["persist"]
text = 'echo ran > "$FRESHROOT_ROOT/var/lib/after-persist-ran"'
"""


def _setup(tmp_path: Path) -> Path:
    root = make_root(tmp_path)
    store = root / "persist"
    (store / "var" / "log").mkdir(parents=True)
    (store / "var" / "log" / "old.log").write_text("kept\n")
    home = store / "home" / "alice"
    home.mkdir(parents=True)
    os.chown(home, 1000, 1000)
    (home / ".bashrc").write_text("root wrote this through the first boot's symlink\n")  # root's, one link
    (home / ".profile").symlink_to("/etc/shadow")  # planted by alice
    os.lchown(home / ".profile", 1000, 1000)
    (root / "etc" / "shadow").write_text("root:secret:::::::\n")
    os.chmod(root / "etc" / "shadow", 0o600)
    os.link(root / "etc" / "shadow", home / ".hard")  # a hard link alice made (root's file, two links)
    (root / "home" / "alice").mkdir(parents=True)
    os.chown(root / "home" / "alice", 1000, 1000)
    (root / "srv").mkdir()
    (root / "srv" / "blocked").write_text("a file where a directory is declared\n")  # conflict
    (root / "etc" / "issue").mkdir()  # not a file: etc refuses this one only
    (root / "decl.toml").write_text(DECLARATION)
    return root


def test_one_failing_entry_of_each_kind_and_everything_else_is_applied(tmp_path: Path) -> None:
    root = _setup(tmp_path)

    def run() -> dict[str, object]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["apply", "--root", str(root), "--config", str(root / "decl.toml")])
        return {
            "rc": rc, "out": out.getvalue() + err.getvalue(),
            "log": is_mounted(root / "var" / "log"), "app": is_mounted(root / "var" / "lib" / "app"),
            "ssh": is_mounted(root / "home" / "alice" / ".ssh"),
            "bashrc": is_mounted(root / "home" / "alice" / ".bashrc"),
            "bashrc_text": (root / "home" / "alice" / ".bashrc").read_text(),
            "profile": is_mounted(root / "home" / "alice" / ".profile"),
            "hard": is_mounted(root / "home" / "alice" / ".hard"),
            "old_log": (root / "var" / "log" / "old.log").read_text(),
            "tmpfiles": (root / "var" / "lib" / "made-by-tmpfiles").is_dir(),
            "motd": (root / "etc" / "motd").read_text() if (root / "etc" / "motd").exists() else None,
            "issue_dir": (root / "etc" / "issue").is_dir(),
            "snippet": (root / "snippet-ran").is_file(),
            "after_persist": (root / "var/lib/after-persist-ran").is_file(),
        }

    got = in_mount_namespace(run)
    out = str(got["out"])
    assert got["rc"] == 1, out
    # Everything that does not depend on a failure is applied.
    assert got["log"], out
    assert got["old_log"] == "kept\n"
    assert got["app"], out
    assert got["ssh"], out
    assert got["motd"] == "hello\n", out
    assert got["tmpfiles"], out  # the step after persist and etc still ran
    # A plain file root made in alice's storage directory is hers: bound, not refused.
    assert got["bashrc"], out
    assert str(got["bashrc_text"]).startswith("root wrote this")
    # What alice planted is never followed or bound.
    assert not got["profile"], out
    assert not got["hard"], out
    assert "secret" not in out
    # Each failure is named.
    assert "/srv/blocked" in out
    assert ".profile" in out
    assert ".hard" in out
    assert "/etc/issue" in out
    assert got["issue_dir"]
    # A failing snippet and a failing tmpfiles line are named; the other snippets still run,
    # the one after persist too (persist's failures are its entries', not the whole step's).
    assert "broken" in out
    assert "/srv/blocked/inside" in out
    assert got["snippet"], out
    assert got["after_persist"], out


def test_safe_accepts_a_file_root_made_in_a_users_directory_and_nothing_a_user_planted(tmp_path: Path) -> None:
    import pytest

    from freshroot.errors import UnsafePathError
    from freshroot.fs.chase import ChaseFlags, chase

    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, 1000, 1000)
    (home / "made-by-root").write_text("x")
    (tmp_path / "secret").write_text("s")
    os.link(tmp_path / "secret", home / "hard")
    (home / "link").symlink_to("/secret")
    os.lchown(home / "link", 1000, 1000)
    (home / "dir").mkdir()  # root's directory in a user's: still refused (a walk could go on below it)
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        with chase("/home/made-by-root", root_fd=fd, flags=ChaseFlags.SAFE | ChaseFlags.ROOT_FILES) as found:
            assert found.st.st_uid == 0
        for name in ("hard", "link", "dir"):
            with pytest.raises(UnsafePathError):
                chase(f"/home/{name}", root_fd=fd, flags=ChaseFlags.SAFE | ChaseFlags.ROOT_FILES)
        with pytest.raises(UnsafePathError):  # without ROOT_FILES: systemd's rule (tmpfiles)
            chase("/home/made-by-root", root_fd=fd, flags=ChaseFlags.SAFE)
    finally:
        os.close(fd)
