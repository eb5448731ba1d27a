"""Which files are read and in which order, and what --cat-config/--tldr print, against 262."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.tmpfiles.commands import build_parser
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


# --- Symlinks in and to the configuration directories, resolved below --root ------------------
# systemd 262 lists the files with chaseat() from the root's fd, as freshroot does everything:
# these cases resolve the same way inside the root and on the host, so both tools must agree
# byte for byte. Where the two resolutions differ (an absolute link whose target is only in the
# root, or also on the host), systemd reads the host's file: that is the deliberate difference
# "conf-files-inside-root", shown in tests/tmpfiles/test_differences.py.


def _linked_tree(root: Path, host_only: Path) -> None:
    """A NixOS-like root: /etc/tmpfiles.d an absolute symlink to /etc/static/tmpfiles.d, and
    in /run/tmpfiles.d every kind of symlink a file can be."""
    make_root(root)
    static = root / "etc/static/tmpfiles.d"
    static.mkdir(parents=True)
    (static / "s1.conf").write_text("d /s1\n")
    os.symlink("s1.conf", static / "s2.conf")  # relative, same directory
    (static / "bad.conf").write_text("d /bad 0999\n")  # names the file in a message
    os.symlink("/etc/static/tmpfiles.d", root / "etc/tmpfiles.d")  # the whole directory
    run = root / "run/tmpfiles.d"
    run.mkdir(parents=True)
    lib = root / "usr/lib/tmpfiles.d"
    lib.mkdir(parents=True)
    (root / "usr/lib/empty").write_text("")
    host_only.write_text("d /from-the-host\n")
    links = {
        "masked.conf": "/dev/null",  # a mask, though the root has no /dev at all
        "masked-rel.conf": "../../dev/null",
        "dangling.conf": "/nowhere/dangling.conf",  # warned about; hides nothing
        "host.conf": str(host_only),  # exists on the host only: not in the root, so dangling
        "loop.conf": "loop.conf",
        "notdir.conf": "/etc/passwd/x",
        "empty.conf": "../../usr/lib/empty",  # an empty file: a mask, listed
        "dir.conf": "../../usr",  # not a regular file: skipped, hides nothing
    }
    for name, target in links.items():
        os.symlink(target, run / name)
        (lib / name).write_text(f"d /lib-{name.removesuffix('.conf')}\n")
    (lib / "s1.conf").write_text("d /lib-s1\n")  # hidden by /etc's (through the directory link)
    (lib / "lib.conf").write_text("d /lib\n")
    (root / "usr/local/lib").mkdir(parents=True)
    os.symlink("../../lib/tmpfiles.d", root / "usr/local/lib/tmpfiles.d")  # the same directory again


@pytest.mark.parametrize("flag", ["--cat-config", "--tldr"])
def test_cat_config_through_symlinks_same_as_reference(flag: str, tmp_path: Path, oracles: Path,
                                                       capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    root = tmp_path / "root"
    _linked_tree(root, tmp_path / "host-only.conf")
    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--root={root}", flag],
                         capture_output=True, env=clean_env(), check=False)
    rc = run_cat(build_parser().parse_args([f"--root={root}", flag]))
    out = capfdbinary.readouterr()
    assert rc == ref.returncode == 0
    assert out.out == ref.stdout
    assert out.err == ref.stderr
    # What the case is about, spelled out: the directory link was followed inside the root, a
    # link is shown with its target, masks hide, and what leads nowhere in the root hides nothing.
    assert f"# {root}/etc/static/tmpfiles.d/s2.conf -> {root}/etc/static/tmpfiles.d/s1.conf\n".encode() in out.out
    assert f"# {root}/run/tmpfiles.d/empty.conf is a mask.\n".encode() in out.out
    for shown in (b"d /lib-dangling", b"d /lib-host", b"d /lib-loop", b"d /lib-notdir", b"d /lib-dir", b"d /lib\n"):
        assert shown in out.out
    for hidden in (b"lib-masked", b"lib-s1", b"lib-empty", b"from-the-host"):
        assert hidden not in out.out
    # systemd's words, root and path run together as systemd prints them.
    assert f"Failed to chase '{root}run/tmpfiles.d/dangling.conf': No such file or directory\n".encode() in out.err
    assert f"Failed to chase '{root}run/tmpfiles.d/loop.conf': Too many levels of symbolic links\n".encode() in out.err


def test_create_through_symlinks_same_as_reference(tmp_path: Path, oracles: Path) -> None:
    root = tmp_path / "root"
    _linked_tree(root, tmp_path / "host-only.conf")
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create"])
    ours, config = run_ours(root, [])
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc == 65
    assert f"{root}/etc/static/tmpfiles.d/bad.conf:1: Invalid mode '0999'." in ours.messages
    assert would_paths(ref, root) == our_created_paths(config) == {
        "/s1", "/lib", "/lib-dangling", "/lib-host", "/lib-loop", "/lib-notdir", "/lib-dir"}


def test_create_for_real_through_symlinks_same_as_reference(tmp_path: Path, oracles: Path) -> None:
    """Not a dry run: both tools create into their own copy of the root; the same nodes appear."""
    roots = {}
    for who in ("ref", "ours"):
        roots[who] = tmp_path / who / "root"
        _linked_tree(roots[who], tmp_path / who / "host-only.conf")
    ref = run_reference(oracles / "systemd-tmpfiles-new", roots["ref"], ["--create"], dry_run=False)
    main = "import sys; from freshroot.tmpfiles.commands import main; sys.exit(main())"
    ours = subprocess.run([sys.executable, "-c", main, f"--root={roots['ours']}", "--create"],
                          capture_output=True, env=clean_env(), check=False)
    assert ours.returncode == ref.rc == 65

    def made(root: Path) -> set[str]:
        return {p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink()} - {"etc", "run", "usr"}

    assert made(roots["ours"]) == made(roots["ref"]) == {
        "s1", "lib", "lib-dangling", "lib-host", "lib-loop", "lib-notdir", "lib-dir"}


@pytest.mark.parametrize("configs", [
    ["s2.conf"],  # found through the directory link
    ["bad.conf"],  # named as systemd names it (the directory resolved)
    ["dangling.conf"],  # leads nowhere in /run: the next directory's
    ["loop.conf"],  # an error other than "not there" stops the search
    ["notdir.conf"],
    ["nosuch.conf"],
])
def test_bare_names_through_symlinks_same_as_reference(configs: list[str], tmp_path: Path, oracles: Path) -> None:
    root = tmp_path / "root"
    _linked_tree(root, tmp_path / "host-only.conf")
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", *configs])
    ours, config = run_ours(root, configs)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    assert would_paths(ref, root) == our_created_paths(config)


def test_explicit_path_is_the_hosts_file(tmp_path: Path, oracles: Path) -> None:
    """A path on the command line is the host's, also under --root (as systemd's fopen())."""
    root = tmp_path / "root"
    _linked_tree(root, tmp_path / "host-only.conf")
    (root / str(tmp_path).lstrip("/")).mkdir(parents=True)
    (root / str(tmp_path).lstrip("/") / "host-only.conf").write_text("d /from-the-root\n")
    configs = [str(tmp_path / "host-only.conf")]
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", *configs])
    ours, config = run_ours(root, configs)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc == 0
    assert would_paths(ref, root) == our_created_paths(config) == {"/from-the-host"}


@pytest.mark.parametrize(("replace", "created"), [
    # Through the directory link: it takes the place of /etc/static/tmpfiles.d/s1.conf.
    ("/etc/tmpfiles.d/s1.conf", {"/new", "/lib"}),
    # A file of that name in a directory before it wins: the arguments are not read at all.
    ("/usr/lib/tmpfiles.d/s1.conf", {"/s1", "/lib"}),
    # '..' cannot leave the root: /s1.conf, in no directory of the list, so at the end, where
    # s1.conf is taken already.
    ("/usr/lib/tmpfiles.d/../../../../s1.conf", {"/s1", "/lib"}),
    ("/opt/new.conf", {"/s1", "/lib", "/new"}),  # a directory not in the list: at the end
    ("/etc/passwd/x.conf", set()),  # cannot be resolved: exit 1, nothing read
    ("/opt/loop.conf", set()),
])
def test_replace_through_symlinks_same_as_reference(replace: str, created: set[str], tmp_path: Path,
                                                    oracles: Path) -> None:
    root = make_root(tmp_path / "root")
    (root / "etc/static/tmpfiles.d").mkdir(parents=True)
    (root / "etc/static/tmpfiles.d/s1.conf").write_text("d /s1\n")
    os.symlink("/etc/static/tmpfiles.d", root / "etc/tmpfiles.d")
    (root / "usr/lib/tmpfiles.d").mkdir(parents=True)
    (root / "usr/lib/tmpfiles.d/s1.conf").write_text("d /lib-s1\n")
    (root / "usr/lib/tmpfiles.d/lib.conf").write_text("d /lib\n")
    (root / "opt").mkdir()
    os.symlink("loop.conf", root / "opt/loop.conf")
    new = tmp_path / "new.conf"
    new.write_text("d /new\n")
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", f"--replace={replace}", str(new)])
    ours, config = run_ours(root, [str(new)], replace=replace)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc == (0 if created else 1)
    assert would_paths(ref, root) == our_created_paths(config) == created


@pytest.mark.parametrize("root_name", ["nosuch", "a-file"])
def test_unusable_root_same_as_reference(root_name: str, tmp_path: Path, oracles: Path,
                                         capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    (tmp_path / "a-file").write_text("")
    root = tmp_path / root_name
    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--root={root}", "--cat-config"],
                         capture_output=True, env=clean_env(), check=False)
    rc = run_cat(build_parser().parse_args([f"--root={root}", "--cat-config"]))
    out = capfdbinary.readouterr()
    assert rc == ref.returncode == 1
    assert (out.out, out.err) == (ref.stdout, ref.stderr)


def test_root_given_through_a_symlink_same_as_reference(tmp_path: Path, oracles: Path,
                                                        capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    root = tmp_path / "root"
    _tree(root)
    os.symlink("root", tmp_path / "link")
    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--root={tmp_path}/link", "--cat-config"],
                         capture_output=True, env=clean_env(), check=False)
    rc = run_cat(build_parser().parse_args([f"--root={tmp_path}/link", "--cat-config"]))
    out = capfdbinary.readouterr()
    assert rc == ref.returncode == 0
    assert (out.out, out.err) == (ref.stdout, ref.stderr)
    assert f"# {tmp_path}/link/usr/lib/tmpfiles.d/one.conf -> {root}/usr/lib/tmpfiles.d/one.conf\n".encode() in out.out


def test_user_directories_with_symlinks_as_reference(tmp_path: Path, oracles: Path,
                                                     capfdbinary: pytest.CaptureFixture[bytes],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No --root: the host's / is the root, and the same rules hold (links shown, dangling warned)."""
    conf = tmp_path / "cfg/user-tmpfiles.d"
    conf.mkdir(parents=True)
    (tmp_path / "store").mkdir()
    (tmp_path / "store/a.conf").write_text("d /a\n")
    os.symlink(tmp_path / "store/a.conf", conf / "a.conf")
    os.symlink(tmp_path / "store/missing.conf", conf / "b.conf")
    os.symlink("/dev/null", conf / "c.conf")
    os.symlink(tmp_path / "store", tmp_path / "data", target_is_directory=True)
    (tmp_path / "store/user-tmpfiles.d").mkdir()
    (tmp_path / "store/user-tmpfiles.d/c.conf").write_text("d /c\n")
    (tmp_path / "store/user-tmpfiles.d/d.conf").write_text("d /d\n")
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_CONFIG_DIRS": str(tmp_path / "none"), "XDG_RUNTIME_DIR": str(tmp_path / "none"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_DATA_DIRS": str(tmp_path / "none")}
    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), "--user", "--cat-config"],
                         capture_output=True, env={"PATH": "/usr/bin:/bin", **env}, check=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rc = run_cat(build_parser().parse_args(["--user", "--cat-config"]))
    out = capfdbinary.readouterr()
    assert rc == ref.returncode == 0
    assert (out.out, out.err) == (ref.stdout, ref.stderr)
    assert f"# {conf}/a.conf -> {tmp_path}/store/a.conf\n".encode() in out.out
    assert f"# {tmp_path}/store/user-tmpfiles.d/d.conf\n".encode() in out.out
    assert b"d /c" not in out.out
