"""systemd's portable unit-name rule (portable.c prefix_match / unit_match)."""

from __future__ import annotations

import pytest

from freshroot.image.units import prefix_match, unit_match, unit_problem


@pytest.mark.parametrize(("unit", "prefix", "expected"), [
    ("demo.service", "demo", True),
    ("demo-web.service", "demo", True),
    ("demo@1.service", "demo", True),
    ("demo.web.socket", "demo", True),
    ("demo2.service", "demo", False),  # nixpkgs' startsWith check lets this through
    ("demoservice", "demo", False),
    ("other-demo.service", "demo", False),
    ("demo.service", "demo.service", True),  # a complete match counts
])
def test_prefix_match(unit, prefix, expected):
    assert prefix_match(unit, prefix) is expected


@pytest.mark.parametrize(("unit", "expected"), [
    ("demo.service", True), ("demo.socket", True), ("demo.target", True), ("demo.timer", True),
    ("demo.path", True), ("demo.mount", False), ("demo.slice", False), ("demo", False),
])
def test_unit_match_types(unit, expected):
    assert unit_match(unit, ("demo",)) is expected


def test_unit_match_any_prefix():
    assert unit_match("web-x.service", ("demo", "web"))
    assert not unit_match("webby.service", ("demo", "web"))


def test_unit_problem_names_the_unit_and_rule():
    problem = unit_problem("demo2.service", ("demo",))
    assert problem is not None
    assert "demo2.service" in problem
    assert "demo-*" in problem
    assert unit_problem("demo-2.service", ("demo",)) is None
    wrong_type = unit_problem("demo.mount", ("demo",))
    assert wrong_type is not None
    assert "mount" in wrong_type
    invalid = unit_problem("demo x.service", ("demo",))
    assert invalid is not None
    assert "not a valid unit" in invalid
