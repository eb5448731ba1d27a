"""Hand-written differential cases: freshroot and systemd-tmpfiles (newest, and 252 where it
behaves the same) give the same tree and exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tmpfiles.cases import all_cases
from tests.tmpfiles.harness import Case, apply_both, compare, diff_trees

CASES = all_cases()

pytestmark = [pytest.mark.oracle, pytest.mark.root]


def test_enough_cases() -> None:
    assert len(CASES) >= 300
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_against_newest(case: Case, oracles: Path, scratch: Path) -> None:
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, f"{case.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("case", [c for c in CASES if c.v252], ids=str)
def test_against_252(case: Case, oracles: Path, scratch: Path) -> None:
    """Where 252 itself agrees with the newest release, freshroot agrees with 252 too."""
    old, ours = apply_both(case, oracles / "systemd-tmpfiles-252", scratch / "old")
    problems = diff_trees(old.tree, ours.tree, ("systemd-252", "freshroot"))
    if old.status != ours.status:
        problems.append(f"exit status differs: 252={old.status} freshroot={ours.status}")
    if problems:
        new, _ = apply_both(case, oracles / "systemd-tmpfiles-new", scratch / "new")
        versions = diff_trees(old.tree, new.tree, ("252", "new"))
        assert versions or old.status != new.status, (
            f"{case.name}: 252 and the newest agree, freshroot differs:\n" + "\n".join(problems))
