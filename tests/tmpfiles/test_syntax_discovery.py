"""Which files are read and in which order, and what --cat-config/--tldr print, against 262."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from freshroot.tmpfiles.command import build_parser
from freshroot.tmpfiles.load import run_cat
from tests.tmpfiles.syntax_oracle import clean_env, make_root, our_created_paths, run_ours, run_reference, would_paths

pytestmark = pytest.mark.oracle


def _tree(root: Path) -> None:
    make_root(root)
    for d in ("etc/tmpfiles.d", "run/tmpfiles.d", "usr/local/lib/tmpfiles.d", "usr/lib/tmpfiles.d"):
        (root / d).mkdir(parents=True)
    (root / "usr/lib/tmpfiles.d/one.conf").write_text("# comment\nd /one\n\n  # indented\nd /one-b  \n")
    (root / "usr/lib/tmpfiles.d/two.conf").write_text("d /lib-two\n")
    (root / "etc/tmpfiles.d/two.conf").write_text("d /etc-two\n")
    (root / "usr/lib/tmpfiles.d/three.conf").write_text("d /three\n")
    os.symlink("/dev/null", root / "etc/tmpfiles.d/three.conf")
    (root / "usr/lib/tmpfiles.d/four.conf").write_text("d /four\n")
    (root / "run/tmpfiles.d/four.conf").write_text("")  # an empty file masks too
    (root / "usr/local/lib/tmpfiles.d/00-first.conf").write_text("d /first\n; semicolon\nd /x - nosuch\n")
    (root / "usr/lib/tmpfiles.d/zz-last.conf").write_bytes(b"d /no-newline")
    (root / "usr/lib/tmpfiles.d/not-conf.txt").write_text("d /ignored\n")
    (root / "usr/lib/tmpfiles.d/.hidden.conf").write_text("d /hidden\n")
    (root / "usr/lib/tmpfiles.d/dir.conf").mkdir()


@pytest.mark.parametrize("flag", ["--cat-config", "--tldr"])
def test_cat_config_same_as_reference(flag: str, tmp_path: Path, oracles: Path,
                                      capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    root = tmp_path / "root"
    _tree(root)
    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--root={root}", flag],
                         capture_output=True, env=clean_env(), check=False)
    args = build_parser().parse_args([f"--root={root}", flag])
    assert run_cat(args) == ref.returncode == 0
    assert capfdbinary.readouterr().out == ref.stdout


def test_directory_order_same_as_reference(tmp_path: Path, oracles: Path) -> None:
    root = tmp_path / "root"
    _tree(root)
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create"])
    ours, config = run_ours(root, [])
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc == 65
    assert would_paths(ref, root) == our_created_paths(config)
    # Order of first appearance is systemd's processing order.
    assert [g.path for g in config.groups] == ["/first", "/one", "/one-b", "/etc-two", "/no-newline"]


def test_replace_same_as_reference(tmp_path: Path, oracles: Path) -> None:
    root = tmp_path / "root"
    _tree(root)
    new = tmp_path / "new.conf"
    new.write_text("d /replacement\nd /bad 0999\n")
    args = ["--create", "--replace=/etc/tmpfiles.d/one.conf", str(new)]
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, args)
    ours, config = run_ours(root, [str(new)], replace="/etc/tmpfiles.d/one.conf")
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    assert would_paths(ref, root) == our_created_paths(config)
    assert "/one" not in our_created_paths(config)


def test_explicit_files_and_stdin_same_as_reference(tmp_path: Path, oracles: Path) -> None:
    root = tmp_path / "root"
    _tree(root)
    a = tmp_path / "a.conf"
    a.write_text("d /from-a\n")
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", str(a), "one.conf"])
    ours, config = run_ours(root, [str(a), "one.conf"])
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc == 0
    assert would_paths(ref, root) == our_created_paths(config) == {"/from-a", "/one", "/one-b"}


@pytest.mark.parametrize("configs", [["missing.conf"], ["/no/such/file.conf", "one.conf"]])
def test_missing_explicit_file_same_as_reference(configs: list[str], tmp_path: Path, oracles: Path) -> None:
    root = tmp_path / "root"
    _tree(root)
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", *configs])
    ours, config = run_ours(root, configs)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc == 1
    assert config.read_failed
    assert ref.would == []


def test_hard_failure_in_explicit_file_applies_nothing(tmp_path: Path, oracles: Path) -> None:
    root = tmp_path / "root"
    _tree(root)
    a = tmp_path / "a.conf"
    a.write_text("d /ok\nf~ /bad - - - - !!!\nd /ok2\n")
    b = tmp_path / "b.conf"
    b.write_text("d /never-read\n")
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", str(a), str(b)])
    ours, config = run_ours(root, [str(a), str(b)])
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc == 1
    assert ref.would == []
    assert config.read_failed


def test_inline_same_as_reference(tmp_path: Path, oracles: Path) -> None:
    root = make_root(tmp_path / "root")
    lines = ["d /inl1", "d /inl2 - nosuch", "f /inl3 - - - - a b c", "d /x\nd /y", "# c", ""]
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", "--inline", *lines])
    ours, config = run_ours(root, lines, inline=True)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    assert would_paths(ref, root) == our_created_paths(config)


def test_credential_lines(tmp_path: Path, oracles: Path) -> None:
    root = make_root(tmp_path / "root")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "tmpfiles.extra").write_text("d /from-credential\nd /bad 0999\n")
    (creds / "secret").write_bytes(b"s3cret\n")
    (creds / "b64").write_text("aGVsbG8=\n")
    conf = tmp_path / "c.conf"
    conf.write_text("f^ /s - - - - secret\nf^~ /b - - - - b64\nf^ /missing - - - - nope\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", str(conf)], env=env)
    ours, config = run_ours(root, [str(conf)], env=env)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    assert would_paths(ref, root) == our_created_paths(config)
    by_path = {g.path: g.items[0] for g in config.groups}
    assert by_path["/s"].content == b"s3cret\n"
    assert by_path["/b"].content == b"hello"


def test_relative_path_named_absolute_in_messages(tmp_path: Path, oracles: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_root(tmp_path / "root")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/r.conf").write_text("d /ok\nd /bad 0999\n")
    monkeypatch.chdir(tmp_path)
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", "sub/r.conf"])
    ours, _ = run_ours(root, ["sub/r.conf"])
    assert ours.messages == ref.messages == [f"{tmp_path}/sub/r.conf:2: Invalid mode '0999'."]
    assert ours.rc == ref.rc == 65


@pytest.mark.skipif(not Path("/usr/lib/tmpfiles.d").is_dir(), reason="this machine has no /usr/lib/tmpfiles.d")
def test_this_machines_tmpfiles_d_parse_as_systemd(tmp_path: Path, oracles: Path) -> None:
    import shutil

    root = make_root(tmp_path / "root")
    for name in ("passwd", "group"):  # the machine's own accounts, which its packages' lines name
        shutil.copy(f"/etc/{name}", root / "etc" / name)
    shutil.copytree("/usr/lib/tmpfiles.d", root / "usr/lib/tmpfiles.d", symlinks=True)
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", "--boot"])
    ours, config = run_ours(root, [], boot=True)
    prefix = str(root / "usr/lib/tmpfiles.d")
    assert [m for m in ours.messages if m.startswith(prefix)] == [m for m in ref.messages if m.startswith(prefix)]
    # 73: the dry run of the create phase can fail below directories it would create first.
    assert ours.rc == (0 if ref.rc == 73 else ref.rc)
    assert would_paths(ref, root) <= our_created_paths(config, root)
    assert len(config.groups) > 20


@pytest.mark.parametrize("argv", [
    ["--create", "--replace=relative.conf", "x.conf"],
    ["--create", "--replace=/etc/tmpfiles.d/x.txt", "x.conf"],
    ["--cat-config", "--replace=/etc/tmpfiles.d/x.conf", "x.conf"],
    ["--create", "--replace=/etc/tmpfiles.d/x.conf"],
    ["--create", "--user", "--root=/tmp", "x.conf"],
])
def test_refused_option_combinations_as_reference(argv: list[str], oracles: Path) -> None:
    from freshroot.errors import UsageError
    from freshroot.tmpfiles.load import LoadOptions

    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), *argv], capture_output=True, text=True,
                         env=clean_env(), check=False)
    with pytest.raises(UsageError) as raised:
        LoadOptions.from_args(build_parser().parse_args(argv))
    assert ref.returncode == raised.value.exit_code == 1
    assert ref.stderr.strip() == raised.value.message


def test_user_directories_as_reference(tmp_path: Path, oracles: Path, capfdbinary: pytest.CaptureFixture[bytes],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    places = ["cfg1", "cfg2", "home/.config", "rt", "home/.local/share", "data1"]
    for d in places:
        where = tmp_path / d / "user-tmpfiles.d"
        where.mkdir(parents=True)
        (where / "same.conf").write_text(f"d /{d}\n")
        (where / (d.replace("/", "_") + ".conf")).write_text(f"d /{d}-own\n")
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_DIRS": f"{tmp_path}/cfg1:{tmp_path}/cfg2",
           "XDG_RUNTIME_DIR": str(tmp_path / "rt"), "XDG_DATA_DIRS": str(tmp_path / "data1")}
    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), "--user", "--cat-config"],
                         capture_output=True, env={"PATH": "/usr/bin:/bin", **env}, check=False)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CONFIG_DIRS", "XDG_DATA_DIRS", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert run_cat(build_parser().parse_args(["--user", "--cat-config"])) == ref.returncode == 0
    assert capfdbinary.readouterr().out == ref.stdout
    assert b"home/.config/user-tmpfiles.d/same.conf" in ref.stdout
