"""The declaration's field types (config/fields.py): what each accepts, refuses and says."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freshroot.config import fields
from freshroot.config.table import Table
from freshroot.errors import ConfigError, Location
from freshroot.fs.accounts import Accounts
from freshroot.persist.model import Entry, Kind, Perms, Storage
from freshroot.systemd.escape import escape_path, unescape_path, unit_name_from_path
from freshroot.systemd.units import mount_unit


def _table(**values: Any) -> Table:
    return Table(values, ("x",), "f.toml", {("x", k): Location("f.toml", 7) for k in values})


def _refused(read: Any, **values: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read(_table(**values))
    assert str(info.value).startswith("f.toml:7: x.")
    return info.value


@pytest.mark.parametrize(("value", "mode"), [("0755", 0o755), ("755", 0o755), ("0", 0), ("7777", 0o7777),
                                             (0o640, 0o640), (0, 0), ("04755", 0o4755)])
def test_mode_accepts_octal_strings_and_integers(value: Any, mode: int) -> None:
    assert fields.mode(_table(mode=value)) == mode


@pytest.mark.parametrize("value", [-1, 0o10000, "-1", "0x1ff", "0o755", "rwx", "", "\uff18", True, 1.5, ["0755"]])
def test_mode_refuses(value: Any) -> None:
    error = _refused(fields.mode, mode=value)
    assert "mode" in error.message
    assert error.hint


def test_mode_absent_gives_the_default() -> None:
    assert fields.mode(_table(), "mode", 0o644) == 0o644
    assert fields.mode(_table()) is None


@pytest.mark.parametrize(("symbolic", "octal"), [("u=rwx,g=rx,o=", "0750"), ("a=r", "0444"), ("u=rw,go=r", "0644"),
                                                 ("u=rwxs,g=rx,o=rx", "4755"), ("a=rwx,o=rwxt", "1777")])
def test_symbolic_mode_gets_the_octal_in_the_hint(symbolic: str, octal: str) -> None:
    assert fields.symbolic_mode(symbolic) == int(octal, 8)
    error = _refused(fields.mode, mode=symbolic)
    assert f'write mode = "{octal}"' in (error.hint or "")


def test_relative_symbolic_mode_has_no_octal() -> None:
    assert fields.symbolic_mode("u+x") is None
    assert fields.symbolic_mode("go-w") is None


@pytest.mark.parametrize(("value", "owner"), [
    ("app", fields.Owner(name="app")), ("1000", fields.Owner(id=1000)), (0, fields.Owner(id=0)),
    ("svc$", fields.Owner(name="svc$")), ("Debian-exim", fields.Owner(name="Debian-exim")),
    (4294967294, fields.Owner(id=4294967294)),
])
def test_owner_is_a_name_or_an_id(value: Any, owner: fields.Owner) -> None:
    assert fields.owner(_table(user=value), "user") == owner


@pytest.mark.parametrize("value", ["²", "\uff11\uff10\uff10\uff10", "99999999999999999999", "4294967295", 65535,
                                   -1, "a:b", "a\nb", "a,b", "", "-x", ".x", "x" * 33, "é", True, 1.5, "a b"])
def test_owner_refuses(value: Any) -> None:
    _refused(lambda t: fields.owner(t, "user"), user=value)


def test_resolve_is_separate_from_parsing() -> None:
    accounts = Accounts.parse("root:x:0:0::/root:/bin/sh\napp:x:990:991::/:/bin/sh\n", "root:x:0:\napp:x:991:\n")
    assert fields.resolve(fields.Owner(name="app"), "user", accounts) == 990
    assert fields.resolve(fields.Owner(name="app"), "group", accounts) == 991
    assert fields.resolve(fields.Owner(id=5), "user", accounts) == 5
    assert fields.resolve(fields.Owner(name="nobody"), "user", accounts) is None


@pytest.mark.parametrize(("path", "words"), [
    ("relative", "absolute"), ("/a/", "canonical"), ("/a//b", "canonical"), ("/a/../b", "canonical"),
    ("/a/./b", "canonical"), ("/", "names no entry"), ("/a\0b", "NUL"), ("/a\nb", "control"), ("/a\tb", "control"),
    ("/a\x7f", "control"), ("/a ", "white space"), ("/a\u2028", "white space"), ("/a\\", "backslash"),
    ("/" + "é" * 128, "255 bytes"),
    (("/" + "y" * 255) * 16, "4096"),
])
def test_path_problems(path: str, words: str) -> None:
    problem = fields.path_problem(path)
    assert problem is not None
    assert words in problem


def test_relative_path() -> None:
    assert fields.path_problem(".ssh", relative=True) is None
    assert fields.path_problem("/x", relative=True) == "must be relative to the user's home"


# Paths made of the characters that trip unit files and unit names.
_COMPONENT = st.text(st.sampled_from([*"ab-_.%\\ \t\n'\"$:é", "\x00", "\u2028"]), min_size=1, max_size=12)


@settings(deadline=None)
@given(st.lists(_COMPONENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts)))
def test_every_accepted_path_renders_as_a_mount_unit(path: str) -> None:
    """The promise the generator relies on: what config check accepts, a unit can carry and
    systemd can name (the unit name unescapes back to the path)."""
    if fields.path_problem(path) is not None:
        return
    entry = Entry(kind=Kind.DIRECTORY, path=path, storage="/persist", perms=Perms(), parent=Perms())
    unit = mount_unit(entry, Storage("/persist", (entry,)))
    text = unit.render()
    assert f"\nWhere={path.replace('%', '%%')}\n" in text
    name = unit_name_from_path(path, ".mount")
    if len(escape_path(path)) + len(".mount") < 256:  # longer names are hashed, as systemd does
        assert unescape_path(name.removesuffix(".mount")) == path


def test_text_and_mount_options() -> None:
    assert fields.text(_table(d="Alice, Room 1"), "d", ":") == "Alice, Room 1"
    assert "':'" in _refused(lambda t: fields.text(t, "d", ":"), d="a:b").message
    assert "control" in _refused(lambda t: fields.text(t, "d"), d="a\nb").message
    assert fields.mount_options(_table(o=["ro", "x-gvfs-hide"]), "o") == ("ro", "x-gvfs-hide")
    for bad in ["x-a,ro", "ro\n", "", " ro"]:
        _refused(lambda t: fields.mount_options(t, "o"), o=[bad])


@pytest.mark.parametrize(("value", "size"), [(4096, 4096), ("1M", 1 << 20), ("128K", 128 << 10), ("128 KiB", 128 << 10),
                                             ("2G", 2 << 30), ("4096", 4096)])
def test_size(value: Any, size: int) -> None:
    assert fields.size(_table(s=value), "s") == size


@pytest.mark.parametrize("value", [-1, "1X", "", "1.5M", True, "\uff11M"])
def test_size_refuses(value: Any) -> None:
    _refused(lambda t: fields.size(t, "s"), s=value)


@pytest.mark.parametrize(("value", "usec"), [(90, 90_000_000), ("90s", 90_000_000), ("1h 30min", 5_400_000_000),
                                             ("2", 2_000_000)])
def test_duration(value: Any, usec: int) -> None:
    assert fields.duration(_table(d=value), "d") == usec


@pytest.mark.parametrize("value", [-1, "soon", "1s\n", True, 1.5])
def test_duration_refuses(value: Any) -> None:
    _refused(lambda t: fields.duration(t, "d"), d=value)
