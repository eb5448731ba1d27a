"""The declaration: shapes, defaults, users, presets, and errors that name file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freshroot.config.load import load_declaration
from freshroot.errors import ConfigError
from freshroot.fs.accounts import Accounts
from freshroot.fs.ops import open_root
from freshroot.persist import presets
from freshroot.persist.model import How, Kind, Migrate, Perms
from freshroot.persist.parse import canonical_problem, parse
from tests.persist.helpers import GROUP, PASSWD


def _parse(tmp_path: Path, text: str):
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    conf = tmp_path / "freshroot.toml"
    conf.write_text(text)
    fd = open_root(str(tmp_path))
    try:
        return parse(load_declaration(fd, [str(conf)]), Accounts.load(fd))
    finally:
        os.close(fd)


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _parse(tmp_path, text)
    return info.value


def test_shapes_and_defaults(tmp_path):
    p = _parse(tmp_path, """
[persist."/persist"]
hide-mounts = true
mount-options = ["nosuid"]
directories = ["/var/log", { path = "/var/lib/private/x", user = "alice", mode = "0700", parent = { mode = "0700" } }]
files = ["/etc/machine-id", { path = "/etc/adjtime", how = "symlink", migrate = "move" }]
users.alice = { directories = [".ssh"], files = [".bashrc"] }
""")
    (s,) = p.storages
    by = {e.path: e for e in s.entries}
    assert set(by) == {"/var/log", "/var/lib/private/x", "/etc/machine-id", "/etc/adjtime",
                       "/home/alice/.ssh", "/home/alice/.bashrc"}
    x = by["/var/lib/private/x"]
    assert (x.kind, x.perms, x.parent) == (Kind.DIRECTORY, Perms(1000, None, 0o700), Perms(None, None, 0o700))
    assert x.source == "/persist/var/lib/private/x"
    assert by["/etc/machine-id"].how is How.AUTO
    assert by["/etc/adjtime"].how is How.SYMLINK
    assert by["/etc/adjtime"].migrate is Migrate.MOVE
    assert by["/var/log"].migrate is Migrate.NO
    assert by["/var/log"].options == ("nosuid", "x-gvfs-hide")
    ssh = by["/home/alice/.ssh"]
    assert (ssh.perms.uid, ssh.perms.gid, ssh.home, ssh.user) == (1000, 1000, "/home/alice", "alice")
    assert by["/var/log"].location is not None
    assert by["/var/log"].location.line == 5


def test_presets_are_included_and_yield_to_the_declaration(tmp_path):
    p = _parse(tmp_path, """
[persist."/persist"]
include = ["ssh-host-keys", "systemd"]
files = [{ path = "/etc/ssh/ssh_host_rsa_key", mode = "0400" }]
""")
    by = {e.path: e for e in p.entries()}
    assert by["/etc/ssh/ssh_host_ed25519_key"].how is How.BIND
    assert by["/etc/ssh/ssh_host_rsa_key"].perms.mode == 0o400  # the declaration wins
    assert "/var/log/journal" in by
    assert set(presets.names()) >= {"ssh-host-keys", "machine-id", "systemd", "networkmanager", "bluetooth", "ids"}
    for name in presets.names():  # every preset parses on its own
        _parse(tmp_path, f'[persist."/p"]\ninclude = ["{name}"]\n')


@pytest.mark.parametrize(("text", "line", "words"), [
    ('directories = ["/var/log", "/var/log"]', 2, "declared twice"),
    ('directories = ["var/log"]', 2, "absolute"),
    ('directories = ["/var/log/"]', 2, "canonical"),
    ('directories = ["/var/../etc"]', 2, "canonical"),
    ('directories = ["/var/lib"]\nfiles = ["/var/lib/x"]', 3, "inside the persisted directory"),
    ('directories = [{ path = "/x", user = "nobody-here" }]', 2, "no user 'nobody-here'"),
    ('directories = [{ path = "/x", mode = "rwx" }]', 2, "octal"),
    ('directories = [{ path = "/x", colour = "red" }]', 2, "unknown key"),
    ('files = [{ path = "/x", how = "copy" }]', 2, '"bind" | "symlink" | "auto"'),
    ('users.bob.directories = [".x"]', 2, "no user 'bob'"),
    ('users.alice.directories = ["/abs"]', 2, "relative"),
    ('include = ["nonsense"]', 2, "no preset named"),
    ('directories = ["/persist/x"]', 2, "storage"),
    ('files = [{ path = "/etc/x", early = true }]', 2, "files[0] (/etc/x): early = true is for directories"),
    ('[[persist."/persist".files]]\npath = "/etc/x"\nearly = true', 4, "files[0] (/etc/x): early = true is for"),
    ('users.alice.files = [{ path = ".x", early = true }]', 2, "(/home/alice/.x): early = true is for directories"),
])
def test_errors_name_the_line(tmp_path, text, line, words):
    e = _error(tmp_path, f'[persist."/persist"]\n{text}\n')
    assert e.location is not None
    assert e.location.line == line, str(e)
    assert words in str(e)
    assert str(e).startswith(str(tmp_path / "freshroot.toml") + f":{line}:")


def test_early_is_for_directories(tmp_path):
    p = _parse(tmp_path, """
[persist."/persist"]
early = true
directories = ["/var/log", { path = "/var/lib/late", early = false }]
files = ["/etc/machine-id", { path = "/etc/adjtime", early = false }]
""")
    early = {e.path: e.early for e in p.entries()}
    # the storage's early is its directories' default; files are never early (the initrd
    # mounts directories only), and early = false on a file is allowed
    assert early == {"/var/log": True, "/var/lib/late": False, "/etc/machine-id": False, "/etc/adjtime": False}
    e = _error(tmp_path, '[persist."/persist"]\nfiles = [{ path = "/etc/x", early = true }]\n')
    assert e.hint is not None
    assert "directory early" in e.hint


def test_one_path_in_two_storages(tmp_path):
    e = _error(tmp_path, '[persist."/a"]\ndirectories = ["/x"]\n[persist."/b"]\ndirectories = ["/x"]\n')
    assert "two storages" in str(e)
    assert e.location is not None
    assert e.location.line == 4


def test_nested_directories_across_storages_are_allowed(tmp_path):
    p = _parse(tmp_path, '[persist."/a"]\ndirectories = ["/var/lib"]\n[persist."/b"]\ndirectories = ["/var/lib/big"]\n')
    assert [e.path for e in p.entries()] == ["/var/lib", "/var/lib/big"]
    e = _error(tmp_path, '[persist."/a"]\ndirectories = ["/var/lib", "/var/lib/x"]\n')
    assert "persists already" in str(e)


@pytest.mark.parametrize(("path", "ok"), [("/a/b", True), ("/", False), ("a", False), ("/a//b", False),
                                          ("/a/./b", False), ("/a/b/", False), ("/a/\0", False)])
def test_canonical(path, ok):
    assert (canonical_problem(path) is None) == ok


def test_config_check_runs_the_persist_parser(tmp_path):
    from freshroot.compose import check_sections

    conf = tmp_path / "freshroot.toml"
    conf.write_text('[persist."/persist"]\ndirectories = [{ path = "/x", user = "whoever" }]\n'
                    'users.bob.directories = [".ssh"]\n')
    fd = open_root(str(tmp_path))
    try:
        table = load_declaration(fd, [str(conf)])
    finally:
        os.close(fd)
    assert check_sections(table) == {"persist": "valid"}  # names are resolved when applying
    conf.write_text('[persist."/persist"]\ndirectories = ["/x", "/x"]\n')
    fd = open_root(str(tmp_path))
    try:
        table = load_declaration(fd, [str(conf)])
    finally:
        os.close(fd)
    with pytest.raises(ConfigError, match="declared twice"):
        check_sections(table)


def test_unknown_mount_option(tmp_path):
    e = _error(tmp_path, '[persist."/persist"]\nmount-options = ["nosuid"]\n'
                         'directories = [{ path = "/x", options = ["x-systemd.automount", "bogus"] }]\n')
    assert "unknown mount option 'bogus'" in str(e)
    assert e.location is not None
    assert e.location.line == 3
