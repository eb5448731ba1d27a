"""Generated declarations through ``freshroot config check``: never a traceback.

A declaration that touches every section is mutated at random: values replaced by hostile
ones (type errors, NUL and newlines, control characters, huge and negative numbers, unicode
digits, non-canonical and overlong paths, deep nesting), unknown keys added. Whatever comes
out, ``config check`` exits 0 or 65, and a 65 names ``file:line:``; never an internal
error (issue 14 #11).
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshroot.cli import main
from freshroot.config.render import to_toml
from freshroot.config.table import Table

BASE: dict[str, Any] = {
    "persist": {
        "audit-ignore": ["/var/cache"],
        "/persist": {
            "hide-mounts": True,
            "mount-options": ["nosuid"],
            "parent": {"user": "root", "group": "root", "mode": "0755"},
            "migrate": "no",
            "include": ["ids"],
            "directories": ["/var/log", {"path": "/var/lib/app", "user": "app", "group": "1000", "mode": "0750",
                                         "options": ["ro"], "parent": {"mode": "0700"}, "migrate": "move"}],
            "files": ["/etc/machine-id", {"path": "/etc/adjtime", "how": "symlink", "mode": 0o644}],
            "users": {"alice": {"home": "/home/alice", "directories": [".ssh"], "files": [".bashrc"]}},
        },
    },
    "users": {"alice": {"uid": 1000, "group": "alice", "extra-groups": ["wheel"], "description": "Alice",
                        "home": "/home/alice", "shell": "/bin/bash", "hashed-password": "!"},
              "svc": {"system": True, "create-home": False}},
    "groups": {"wheel": {"gid": 10, "members": ["alice"], "system": True}, "alice": {}},
    "etc": {"motd": {"text": "hello\n", "mode": "0644", "user": "root", "group": "root"},
            "localtime": {"source": "/usr/share/zoneinfo/UTC", "mode": "symlink"}},
    "environment": {"binsh": "/usr/bin/dash", "usrbinenv": "/usr/bin/env"},
    "activation": {"hello": {"text": "echo hi", "deps": ["etc"], "description": "say hi"}, "short": "true"},
    "tmpfiles": {"rules": ["d /run/app 0755 root root -"],
                 "settings": {"10-app": {"/var/lib/app": {"d": {"mode": "0750", "user": "app", "age": "10d"}}}}},
    "portable": {"app": {"version": "1.0", "units": ["/etc/app.service"], "contents": ["/usr/bin/app"],
                         "block-size": "128K", "description": "App", "os-release": {"ID": "debian"},
                         "symlinks": [{"object": "/usr/bin/app", "symlink": "/bin/app"}]}},
}

# config check resolves owners against the root (and the declaration's own users): a scratch
# root whose accounts are known, so the verdicts do not depend on the host's /etc/passwd.
ACCOUNTS = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:990:990::/var/lib/app:/usr/sbin/nologin\n",
    "group": "root:x:0:\napp:x:990:\n",
    "shadow": "root:*:19000:0:99999:7:::\napp:!:19000::::::\n",
    "gshadow": "root:*::\napp:!::\n",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("root")
    (path / "etc").mkdir()
    for name, text in ACCOUNTS.items():
        (path / "etc" / name).write_text(text)
    return str(path)


HOSTILE: list[Any] = [
    "", " ", "\x00", "a\x00b", "a\nb", "/var/x\n", "/var/x ", "/var/x\\", "\t", "\x1b[31m", "\u2028", "-1",
    "²", "\uff11\uff10\uff10\uff10", "99999999999999999999", "4294967295", "65535", "0o755", "u=rwx,g=rx,o=",
    "9999", "/a/../b", "/a//b", "/a/./b", "relative/path", "/", "/" + "x" * 256, ("/" + "y" * 200) * 21,
    "x-a,ro", "root:x:0:0::/:/bin/sh", "a:b", "wheel,root", "$", "é", "%i", "-", "symlink",
    -1, 0, 65535, 2**32 - 1, 2**32, 2**63 - 1, -(2**63), 0o7777 + 1, 1.5, float("inf"), True, False,
    [], [""], ["\x00"], [1], [[]], {}, {"x": 1}, {"path": "/x\n"},
]


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


_listed = st.sampled_from(HOSTILE)
hostile = st.one_of(_listed, _listed, _listed, _listed, st.text(max_size=12),
                    st.integers(min_value=-(2**63), max_value=2**63 - 1),
                    st.integers(min_value=40, max_value=300).map(_deep))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if len(path) > 8:
        return out  # not inside the deep arrays a mutation put there
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@st.composite
def declarations(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = _copy({k: BASE[k] for k in draw(st.sets(st.sampled_from(sorted(BASE)), min_size=1))})
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        # Mostly a value deep inside a section (a whole section replaced tells little).
        leaves = [p for p in paths if len(p) >= 3] or paths
        where = draw(st.sampled_from(leaves if draw(st.integers(0, 4)) else paths))
        parent: Any = data
        for k in where[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and draw(st.booleans()):
            # a hostile key beside (or instead of) a value: unknown keys, odd names
            parent[draw(st.sampled_from(["bogus", "", "a\x00b", "a\nb", "²", " x", "/var/log\n", "x" * 300]))] = (
                _copy(draw(hostile)))  # a copy: a later mutation must not change HOSTILE's own {} or []
        else:
            parent[where[-1]] = _copy(draw(hostile))
    return data


def test_the_base_declaration_is_valid(tmp_path: Path, root: str) -> None:
    """The mutations start from a declaration that passes: each refusal is the mutation's."""
    decl = tmp_path / "decl.toml"
    decl.write_text(to_toml(Table(BASE)))
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["config", "check", "--root", root, "--config", str(decl)]) == 0, err.getvalue()


# String fields that may hold a NUL or a newline: file content and shell text, and
# audit-ignore patterns (only ever matched against paths read from the disk). Every other
# string of the declaration reaches a unit, an account file, a path, a file name, a rendered
# line or one line of output.
MAY_HOLD = {
    "\x00": {("etc", "motd", "text"), ("persist", "audit-ignore", 0)},
    "\n": {("etc", "motd", "text"), ("persist", "audit-ignore", 0), ("activation", "hello", "text"),
           ("activation", "short"),
           # tmpfiles.d escapes it in the rendered line; an unknown user is tmpfiles' business
           ("tmpfiles", "settings", "10-app", "/var/lib/app", "d", "user")},
}


def test_nul_and_newline_in_every_string_field(tmp_path: Path, root: str) -> None:
    accepted: dict[str, set[tuple[Any, ...]]] = {"\x00": set(), "\n": set()}
    for bad, found in accepted.items():
        for path in _paths(BASE):
            value: Any = BASE
            for k in path:
                value = value[k]
            if not isinstance(value, str):
                continue
            data = _copy(BASE)
            parent = data
            for k in path[:-1]:
                parent = parent[k]
            parent[path[-1]] = value + bad + "x"
            decl = tmp_path / "decl.toml"
            decl.write_text(to_toml(Table(data)))
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = main(["config", "check", "--root", root, "--config", str(decl)])
            assert code in (0, 65), err.getvalue()
            if code == 0:
                found.add(path)
            else:
                assert re.match(rf"freshroot: {re.escape(str(decl))}:\d+: ", err.getvalue()), err.getvalue()
    assert accepted == MAY_HOLD


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declarations())
def test_config_check_never_crashes(root: str, data: dict[str, Any]) -> None:
    try:
        text = to_toml(Table(data))
        tomllib.loads(text)
    except (ValueError, TypeError, RecursionError):
        return  # not expressible as TOML (NaN keys and the like): nothing to check
    with tempfile.TemporaryDirectory() as tmp:
        decl = Path(tmp) / "decl.toml"
        decl.write_text(text)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["config", "check", "--root", root, "--config", str(decl)])
    message = err.getvalue()
    assert code in (0, 65), f"{code}: {message}\n{text}"
    assert "internal error" not in message, message
    assert "Traceback" not in message, message
    if code == 65:
        assert re.match(rf"freshroot: {re.escape(str(decl))}:\d+: ", message), f"{message}\n{text}"
        assert "\x00" not in message


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=60, max_value=4000), st.sampled_from(["[", "{ a = "]))
def test_deep_documents_are_refused_with_their_line(root: str, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else " }"
    text = '[persist."/persist"]\ndirectories = ["/x"]\ny = ' + opener * depth + "1" * (opener == "{ a = ") + \
        closer * depth + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        decl = Path(tmp) / "decl.toml"
        decl.write_text(text)
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["config", "check", "--root", root, "--config", str(decl)])
    assert code == 65, err.getvalue()
    assert f"{decl}:3: " in err.getvalue()
