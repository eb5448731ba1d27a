"""Discovery, precedence, masking, drop-in order, merge rules with locations, and errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshroot.config.load import load, load_declaration
from freshroot.errors import EXIT_DATAERR, ConfigError, Location
from freshroot.fs.ops import open_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def root_fd(root: Path) -> Iterator[int]:
    fd = open_root(str(root))
    yield fd
    os.close(fd)


def put(root: Path, path: str, text: str | bytes) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text)
    return target


def mask(root: Path, path: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to("/dev/null")


def test_nothing_declared_gives_an_empty_table(root_fd: int) -> None:
    loaded = load(root_fd)
    assert loaded.files == ()
    assert dict(loaded.table.data) == {}
    assert loaded.table.keys() == []


@pytest.mark.parametrize(
    ("present", "winner"),
    [
        (["/etc", "/run", "/usr/local/lib", "/usr/lib"], "/etc"),
        (["/run", "/usr/local/lib", "/usr/lib"], "/run"),
        (["/usr/local/lib", "/usr/lib"], "/usr/local/lib"),
        (["/usr/lib"], "/usr/lib"),
    ],
)
def test_first_main_file_found_wins(root: Path, root_fd: int, present: list[str], winner: str) -> None:
    for prefix in present:
        put(root, f"{prefix}/freshroot/freshroot.toml", f'from = "{prefix}"\n"{prefix}" = 1\n')
    table = load_declaration(root_fd)
    assert table.raw("from") == winner
    # The others are not read at all: their own keys are absent.
    assert table.keys() == ["from", winner]
    assert table.location("from") == Location(f"{winner}/freshroot/freshroot.toml", 1)


def test_masked_main_file_hides_lower_ones(root: Path, root_fd: int) -> None:
    mask(root, "/etc/freshroot/freshroot.toml")
    put(root, "/usr/lib/freshroot/freshroot.toml", "x = 1\n")
    loaded = load(root_fd)
    assert loaded.files == ()
    assert loaded.masked == ("/etc/freshroot/freshroot.toml",)
    assert "x" not in loaded.table


def test_drop_ins_same_name_higher_dir_wins_and_dev_null_masks(root: Path, root_fd: int) -> None:
    put(root, "/usr/lib/freshroot/conf.d/10-a.toml", 'a = "usr"\n')
    put(root, "/etc/freshroot/conf.d/10-a.toml", 'a = "etc"\n')
    put(root, "/usr/lib/freshroot/conf.d/20-b.toml", 'b = "usr"\n')
    mask(root, "/run/freshroot/conf.d/20-b.toml")
    put(root, "/usr/local/lib/freshroot/conf.d/30-c.toml", 'c = "local"\n')
    put(root, "/usr/lib/freshroot/conf.d/30-c.toml", 'c = "usr"\n')
    loaded = load(root_fd)
    assert loaded.files == ("/etc/freshroot/conf.d/10-a.toml", "/usr/local/lib/freshroot/conf.d/30-c.toml")
    assert loaded.masked == ("/run/freshroot/conf.d/20-b.toml",)
    assert dict(loaded.table.data) == {"a": "etc", "c": "local"}


def test_drop_ins_read_in_file_name_order_across_dirs_after_main(root: Path, root_fd: int) -> None:
    put(root, "/usr/lib/freshroot/freshroot.toml", 'who = "main"\nlist = ["main"]\n')
    put(root, "/etc/freshroot/conf.d/50-etc.toml", 'who = "50"\nlist = ["50"]\n')
    put(root, "/usr/lib/freshroot/conf.d/10-usr.toml", 'who = "10"\nlist = ["10"]\n')
    put(root, "/run/freshroot/conf.d/90-run.toml", 'who = "90"\nlist = ["90"]\n')
    put(root, "/run/freshroot/conf.d/.hidden.toml", "who = 'hidden'\n")
    put(root, "/run/freshroot/conf.d/99-notes.txt", "who = 'txt'\n")
    (root / "etc/freshroot/conf.d/95-dir.toml").mkdir()
    put(root, "/usr/lib/freshroot/conf.d/95-dir.toml", 'who = "95"\nlist = ["95"]\n')  # not shadowed by a dir
    table = load_declaration(root_fd)
    assert table.raw("list") == ["main", "10", "50", "90", "95"]
    assert table.raw("who") == "95"
    assert table.location("who") == Location("/usr/lib/freshroot/conf.d/95-dir.toml", 1)
    assert table.location("list", 2) == Location("/etc/freshroot/conf.d/50-etc.toml", 2)


def test_merge_rules_keep_locations(root: Path, root_fd: int) -> None:
    put(root, "/etc/freshroot/freshroot.toml", """\
[persist."/persist"]
hide-mounts = true
directories = [
  "/var/log",
  { path = "/var/lib/colord", mode = "0700" },
]
files = ["/etc/machine-id"]
""")
    put(root, "/etc/freshroot/conf.d/10-more.toml", """\
# more state
[persist."/persist"]
hide-mounts = false

directories = [
  "/var/lib/nixos",
  { path = "/srv", mode = "0750" },
]
[persist."/persist".users.alice]
directories = ["Documents"]
""")
    put(root, "/etc/freshroot/conf.d/20-reset.toml", '[persist."/persist"]\nfiles = []\n')
    table = load_declaration(root_fd)
    storage = table.get_table("persist").get_table("/persist")
    assert storage.raw("directories") == [
        "/var/log", {"path": "/var/lib/colord", "mode": "0700"}, "/var/lib/nixos", {"path": "/srv", "mode": "0750"},
    ]
    names = ("freshroot.toml", "conf.d/10-more.toml", "conf.d/20-reset.toml")
    main, more, reset = (f"/etc/freshroot/{n}" for n in names)
    assert storage.location("hide-mounts") == Location(more, 3)  # a scalar: the later file wins
    assert storage.get_bool("hide-mounts", True) is False
    assert storage.location("directories", 0) == Location(main, 4)
    assert storage.location("directories", 1, "mode") == Location(main, 5)
    assert storage.location("directories", 2) == Location(more, 6)
    assert storage.location("directories", 3, "mode") == Location(more, 7)
    assert storage.location("users", "alice", "directories", 0) == Location(more, 10)
    assert storage.raw("files") == []  # an empty array clears what came before
    assert storage.location("files", 0) == Location(reset, 2)  # nothing left at [0]: the key's line
    assert storage.location() == Location(main, 1)  # a table keeps where it was first written
    with pytest.raises(ConfigError) as e:
        storage.get_table("directories")
    assert str(e.value).startswith(f"{main}:3: ")


def test_syntax_error_names_file_and_line(root: Path, root_fd: int) -> None:
    put(root, "/etc/freshroot/freshroot.toml", "ok = 1\n")
    put(root, "/etc/freshroot/conf.d/10-bad.toml", "a = 1\n\n[persist]\ndirectories = [\"/x\",,]\n")
    with pytest.raises(ConfigError) as e:
        load_declaration(root_fd)
    assert e.value.exit_code == EXIT_DATAERR
    assert e.value.location == Location("/etc/freshroot/conf.d/10-bad.toml", 4)
    assert "TOML syntax error" in str(e.value)


def test_syntax_error_at_end_of_file(root: Path, root_fd: int) -> None:
    put(root, "/etc/freshroot/freshroot.toml", 'a = 1\nb = "unterminated\n')
    with pytest.raises(ConfigError) as e:
        load_declaration(root_fd)
    assert e.value.location is not None
    assert e.value.location.line == 2


def test_duplicate_key_is_a_syntax_error_with_line(root: Path, root_fd: int) -> None:
    put(root, "/etc/freshroot/freshroot.toml", "a = 1\nb = 2\na = 3\n")
    with pytest.raises(ConfigError) as e:
        load_declaration(root_fd)
    assert e.value.location is not None
    assert e.value.location.file == "/etc/freshroot/freshroot.toml"


def test_non_utf8_file_is_a_config_error_naming_it(root: Path, root_fd: int) -> None:
    put(root, "/etc/freshroot/conf.d/10-latin1.toml", b'a = 1\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as e:
        load_declaration(root_fd)
    assert e.value.location == Location("/etc/freshroot/conf.d/10-latin1.toml", 2)
    assert "UTF-8" in str(e.value)


def test_symlinked_config_resolves_inside_the_root(tmp_path: Path, root: Path, root_fd: int) -> None:
    outside = tmp_path / "outside.toml"  # the same absolute path exists on the host and in the root
    outside.write_text('where = "host"\n')
    put(root, str(outside), 'where = "root"\n')
    (root / "etc/freshroot").mkdir(parents=True)
    (root / "etc/freshroot/freshroot.toml").symlink_to(outside)
    put(root, "/site/extra.toml", 'extra = "root"\n')
    (root / "etc/freshroot/conf.d").mkdir()
    # A relative link with more '..' than there are directories stays at the root.
    (root / "etc/freshroot/conf.d/10-extra.toml").symlink_to("../../../../../../../site/extra.toml")
    loaded = load(root_fd)
    assert dict(loaded.table.data) == {"where": "root", "extra": "root"}
    assert loaded.files == ("/etc/freshroot/freshroot.toml", "/etc/freshroot/conf.d/10-extra.toml")


def test_symlink_out_of_the_root_does_not_reach_the_host(tmp_path: Path, root: Path, root_fd: int) -> None:
    outside = tmp_path / "host-only.toml"
    outside.write_text('where = "host"\n')
    (root / "etc/freshroot").mkdir(parents=True)
    (root / "etc/freshroot/freshroot.toml").symlink_to(outside)
    with pytest.raises(ConfigError) as e:
        load_declaration(root_fd)
    assert e.value.location == Location("/etc/freshroot/freshroot.toml")


@pytest.mark.parametrize("kind", ["dangling", "directory", "fifo"])
def test_unreadable_entries_name_the_file(root: Path, root_fd: int, kind: str) -> None:
    path = root / "etc/freshroot/freshroot.toml"
    path.parent.mkdir(parents=True)
    match kind:
        case "dangling":
            path.symlink_to("/nonexistent/decl.toml")
        case "directory":
            path.mkdir()
        case _:
            os.mkfifo(path)  # must be refused, not read (which would block)
    with pytest.raises(ConfigError) as e:
        load_declaration(root_fd)
    assert e.value.location == Location("/etc/freshroot/freshroot.toml")
    assert "cannot read the declaration" in str(e.value)


def test_files_below_the_root_are_named_as_the_root_sees_them(tmp_path: Path, root: Path, root_fd: int) -> None:
    """One path style (docs/activation.md): a file found below --root is /etc/freshroot/...;
    a --config file is a host path, unless it lies inside the root too."""
    put(root, "/etc/freshroot/freshroot.toml", "a = 1\n")
    table = load_declaration(root_fd, root=str(root))
    assert table.location("a") == Location("/etc/freshroot/freshroot.toml", 1)
    put(root, "/persist/kept.toml", "b = 1\n")
    put(tmp_path / "host", "/decl.toml", "c = 1\n")
    loaded = load(root_fd, [str(root / "persist/kept.toml"), str(tmp_path / "host/decl.toml")], root=str(root))
    assert loaded.files == ("/persist/kept.toml", str(tmp_path / "host/decl.toml"))


def test_config_paths_replace_discovery(tmp_path: Path, root: Path, root_fd: int) -> None:
    put(root, "/etc/freshroot/freshroot.toml", 'discovered = true\n')
    host = tmp_path / "host"
    put(host, "/one.toml", 'a = ["one"]\n')
    put(host, "/dir/20-b.toml", 'a = ["dir-20"]\n')
    put(host, "/dir/10-a.toml", 'a = ["dir-10"]\n')
    put(host, "/dir/ignored.conf", 'a = ["no"]\n')
    (host / "dir/30-sub.toml").mkdir()
    loaded = load(root_fd, [str(host / "one.toml"), str(host / "dir")])
    assert loaded.table.raw("a") == ["one", "dir-10", "dir-20"]
    assert "discovered" not in loaded.table
    assert loaded.files == (str(host / "one.toml"), str(host / "dir/10-a.toml"), str(host / "dir/20-b.toml"))
    assert loaded.table.location("a", 2) == Location(str(host / "dir/20-b.toml"), 1)


def test_missing_config_path_is_an_error(tmp_path: Path, root_fd: int) -> None:
    with pytest.raises(ConfigError) as e:
        load_declaration(root_fd, [str(tmp_path / "nope.toml")])
    assert e.value.location == Location(str(tmp_path / "nope.toml"))


def test_dev_null_as_config_path_is_empty(root_fd: int) -> None:
    assert load(root_fd, ["/dev/null"]).table.keys() == []


def test_byte_order_mark_is_skipped(root: Path, root_fd: int) -> None:
    put(root, "/etc/freshroot/freshroot.toml", b"\xef\xbb\xbfa = 1\nb = 2\n")
    table = load_declaration(root_fd)
    assert dict(table.data) == {"a": 1, "b": 2}
    assert table.location("b") == Location("/etc/freshroot/freshroot.toml", 2)


def test_non_utf8_after_a_byte_order_mark_names_the_right_column(root: Path, root_fd: int) -> None:
    put(root, "/etc/freshroot/freshroot.toml", b'\xef\xbb\xbfa = 1\nb = "\xe9"\n')
    with pytest.raises(ConfigError) as e:
        load_declaration(root_fd)
    assert e.value.location == Location("/etc/freshroot/freshroot.toml", 2)
    assert "byte 0xe9 at column 6" in str(e.value)
