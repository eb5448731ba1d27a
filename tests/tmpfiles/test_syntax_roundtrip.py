"""Rendered lines parse back to the same values, in freshroot and in systemd-tmpfiles 262.

Generated rules (paths and contents with spaces, quotes, backslashes, '%', control characters,
non-ASCII, raw bytes) are rendered, then: freshroot's parser gives back the same values, and
systemd-tmpfiles, applying the text for real into a scratch root, creates nodes with exactly
those values (mode, owner, content, link target).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshroot.tmpfiles.load import LoadOptions, load
from freshroot.tmpfiles.messages import Level, Message
from freshroot.tmpfiles.render import Rule, render_rule, render_settings
from tests.tmpfiles.syntax_oracle import make_root, run_reference

USERS = {"root": 0, "daemon": 1, "alice": 1000, "bob": 1001}
GROUPS = {"root": 0, "daemon": 1, "users": 100, "alice": 1000, "wheel": 10}

_char = st.one_of(
    st.characters(codec="utf-8", exclude_characters="/\0", exclude_categories=["Cs"]),
    st.sampled_from(list(" \t\"'\\%#-~:.\n\r\x7f")),
    st.integers(0x80, 0xFF).map(lambda b: chr(0xDC00 + b)),  # a raw byte that is not UTF-8
)
_component = st.text(_char, min_size=1, max_size=12).filter(
    lambda c: c not in (".", "..") and len(c.encode("utf-8", "surrogateescape")) <= 255)
_path = st.lists(_component, min_size=1, max_size=3).map(lambda cs: "/t/" + "/".join(cs))
_text = st.text(_char, min_size=1, max_size=40)
# An argument of "-" is the empty field (for systemd, and so for render_rule), not text.
_argument = _text.filter(lambda t: t != "-")


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    kind = draw(st.sampled_from(["d", "f", "f+", "L", "L+", "p", "f~"]))
    mode = draw(st.none() | st.integers(0, 0o7777))
    user = draw(st.none() | st.sampled_from(sorted(USERS)) | st.sampled_from(["0", "1000"]))
    group = draw(st.none() | st.sampled_from(sorted(GROUPS)))
    argument = data = None
    if kind in ("f", "f+"):
        argument = draw(st.none() | _argument)
    elif kind == "f~":
        kind = "f"
        data = draw(st.binary(min_size=1, max_size=40))
    elif kind.startswith("L"):
        argument = draw(_argument)
    return Rule(kind, draw(_path), mode, user, group, None, argument, data)


def _parse(root: Path, text: str) -> list[Message]:
    conf = root.parent / "r.conf"
    conf.write_bytes(text.encode("utf-8", "surrogateescape"))
    messages: list[Message] = []
    config = load(LoadOptions(configs=(str(conf),), root=str(root)), messages.append)
    assert not config.invalid
    assert not config.read_failed
    _parse.config = config  # type: ignore[attr-defined]
    return messages


def _expected_mode(rule: Rule) -> int:
    if rule.mode is not None:
        assert isinstance(rule.mode, int)
        return rule.mode
    return 0o755 if rule.type == "d" else 0o644


def _resolve(name: str | int | None, table: dict[str, int]) -> int | None:
    if name is None:
        return None
    return int(name) if str(name).isdigit() else table[str(name)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=rules())
def test_render_parse_roundtrip(rule: Rule, tmp_path: Path) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    root = make_root(work / "root")
    text = render_rule(rule, literal_percent=True) + "\n"
    assert [m for m in _parse(root, text) if m.level <= Level.INFO] == []
    items = [i for g in _parse.config.groups for i in g.items]  # type: ignore[attr-defined]
    assert len(items) == 1
    item = items[0]
    assert item.path == rule.path
    assert item.mode == _expected_mode(rule)
    assert (item.uid.id if item.uid else None) == _resolve(rule.user, USERS)
    assert (item.gid.id if item.gid else None) == _resolve(rule.group, GROUPS)
    if rule.data is not None:
        assert item.content == rule.data
    elif rule.type.startswith("f"):
        assert item.content == (None if rule.argument is None else
                                rule.argument.encode("utf-8", "surrogateescape"))
    elif rule.type.startswith("L"):
        assert item.argument == rule.argument
    shutil.rmtree(work)


@pytest.mark.oracle
@pytest.mark.root
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=rules())
def test_rendered_line_means_the_same_to_systemd(rule: Rule, tmp_path: Path, oracles: Path) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    root = make_root(work / "root")
    conf = work / "r.conf"
    conf.write_bytes((render_rule(rule, literal_percent=True) + "\n").encode("utf-8", "surrogateescape"))
    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create", str(conf)], dry_run=False)
    assert ref.messages == []
    assert ref.rc == 0
    node = os.fsencode(str(root)) + rule.path.encode("utf-8", "surrogateescape")
    st_ = os.lstat(node)
    if rule.type.startswith("L"):
        assert stat.S_ISLNK(st_.st_mode)
        assert rule.argument is not None
        assert os.readlink(node) == rule.argument.encode("utf-8", "surrogateescape")
    else:
        assert stat.S_IMODE(st_.st_mode) == _expected_mode(rule)
        assert st_.st_uid == (_resolve(rule.user, USERS) or 0)
        assert st_.st_gid == (_resolve(rule.group, GROUPS) or 0)
        if rule.type.startswith("f"):
            with open(node, "rb") as f:
                content = f.read()
            expected = rule.data if rule.data is not None else (rule.argument or "").encode("utf-8", "surrogateescape")
            assert content == expected
    shutil.rmtree(work)


def test_settings_render_like_nixos() -> None:
    files = render_settings({
        "10-app": {
            "/var/lib/app": {"d": {"mode": "0750", "user": "app", "group": "app", "age": "-"}},
            "/run/app/sock link": {"L+": {"argument": "/var/lib/app/sock"}},
            "/etc/motd": {"f": {"mode": "0644", "argument": "Hello \"world\"\n"}},
        },
        "20-other": {"/tmp/x": {"any": {"type": "x"}}},
    })
    assert files == {
        "10-app.conf": "d /var/lib/app 0750 app app -\n"
                       "L+ /run/app/sock\\x20link - - - - /var/lib/app/sock\n"
                       'f /etc/motd 0644 - - - Hello \\"world\\"\\n\n',
        "20-other.conf": "x /tmp/x - - - -\n",
    }
