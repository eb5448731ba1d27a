"""systemd's own TEST-22-TMPFILES scripts, with freshroot-tmpfiles standing in for
systemd-tmpfiles, each in a private mount namespace (see tests/tmpfiles/upstream.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ORACLES
from tests.tmpfiles.upstream import NOT_YET, TIMING_SENSITIVE, run_script

SCRIPTS = sorted((ORACLES / "tests").glob("TEST-22-TMPFILES.[0-9]*.sh"))

pytestmark = [pytest.mark.oracle, pytest.mark.root, pytest.mark.netns, pytest.mark.slow]


def _params() -> list[object]:
    out: list[object] = []
    for script in SCRIPTS:
        marks = []
        if script.name in NOT_YET:
            marks.append(pytest.mark.xfail(strict=True, reason=NOT_YET[script.name]))
        out.append(pytest.param(script, marks=marks, id=script.name))
    return out


def test_scripts_are_there() -> None:
    assert len(SCRIPTS) >= 20, f"expected systemd's TEST-22-TMPFILES scripts in {ORACLES / 'tests'}"


@pytest.mark.parametrize("script", _params())
def test_script_with_freshroot(script: Path, oracles: Path, scratch: Path) -> None:
    result = run_script(script, "freshroot", oracles / "systemd-tmpfiles-new", scratch / "1")
    for attempt in (2, 3):
        if result.returncode == 0 or script.name not in TIMING_SENSITIVE:
            break
        # A moment of load (a VM test on the other core) can push a few calls past the
        # script's one-second ages; a real difference fails every attempt just the same.
        result = run_script(script, "freshroot", oracles / "systemd-tmpfiles-new", scratch / str(attempt))
    assert result.returncode == 0, f"{script.name} failed ({result.returncode}):\n{result.stderr[-4000:]}"


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.name in TIMING_SENSITIVE], ids=lambda s: s.name)
def test_timing_sensitive_scripts_fail_with_a_slow_reference(script: Path, oracles: Path, scratch: Path) -> None:
    fast = run_script(script, "systemd", oracles / "systemd-tmpfiles-new", scratch / "fast")
    assert fast.returncode == 0, fast.stderr[-2000:]
    slow = run_script(script, "systemd-slow", oracles / "systemd-tmpfiles-new", scratch / "slow")
    assert slow.returncode != 0, "the script passes with a slow reference: it is not timing-sensitive"
