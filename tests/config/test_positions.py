"""The position scanner: generated documents whose every line is known, and a worked example."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings

from freshroot.config.positions import scan
from tests.config.tomlgen import all_paths, documents

Doc = tuple[str, dict[tuple[str | int, ...], int]]


def check(doc: Doc) -> None:
    text, expected = doc
    data = tomllib.loads(text)  # the generator writes valid TOML
    assert set(expected) == all_paths(data)  # ... and knows every path in it
    assert scan(text) == expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_every_key_path_gets_its_line(doc: Doc) -> None:
    check(doc)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_every_key_path_gets_its_line_many(doc: Doc) -> None:
    check(doc)


EXAMPLE = '''\
# freshroot.toml
[persist."/persist"]
hide-mounts = true  # "quoted # not a key"
directories = [
  "/var/log",
  '/var/lib/bluetooth',   # literal
  """/var/lib/\\
     nixos""",
  { path = "/var/lib/colord", user = "colord", mode = "0700" },
  { path = "/srv",
    mode = "0755" },
]

[[activation.etc.hooks]]
text = \'\'\'
echo "]" # not a comment
\'\'\'
[[activation.etc.hooks]]
a."b.c" . d = 1979-05-27 07:32:00Z
'''


def test_worked_example() -> None:
    text = EXAMPLE.replace('{ path = "/srv",\n    mode', '{ path = "/srv", mode')  # TOML 1.0: one line
    tomllib.loads(text)
    lines = scan(text)
    p = ("persist", "/persist")
    assert lines[p] == 2
    assert lines[(*p, "hide-mounts")] == 3
    assert lines[(*p, "directories")] == 4
    assert [lines[(*p, "directories", i)] for i in range(5)] == [5, 6, 7, 9, 10]
    assert lines[(*p, "directories", 3, "mode")] == 9
    assert lines[(*p, "directories", 4, "mode")] == 10
    assert lines[("activation", "etc", "hooks", 0, "text")] == 14
    assert lines[("activation", "etc", "hooks", 1)] == 17
    assert lines[("activation", "etc", "hooks", 1, "a", "b.c", "d")] == 18


def test_multi_line_inline_table_is_tolerated() -> None:
    # TOML 1.1 allows newlines in inline tables; tomllib 3.11 does not, but the scanner copes.
    lines = scan(EXAMPLE)
    assert lines[("persist", "/persist", "directories", 4, "mode")] == 11
    assert lines[("activation", "etc", "hooks", 1)] == 18


def test_malformed_text_stops_quietly() -> None:
    lines = scan('a = 1\nb = "unterminated\nc = 3\n')
    assert lines[("a",)] == 1
    assert ("c",) not in lines
