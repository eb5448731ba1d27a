"""Shared fixtures, and the rule that the README test command skips nothing.

Tests that need root, a namespace, a VM or the reference systemd-tmpfiles builds carry a
marker. Run by hand without those, they skip with the reason. Under ./dev.sh test
(FRESHROOT_REQUIRE_ALL=1, as in CI) a missing prerequisite is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ALL = os.environ.get("FRESHROOT_REQUIRE_ALL") == "1"
ORACLES = Path(os.environ.get("FRESHROOT_ORACLES", Path(__file__).parent.parent / ".cache" / "oracles"))


def _missing(item: pytest.Item) -> str | None:
    if (item.get_closest_marker("root") or item.get_closest_marker("netns")) and os.geteuid() != 0:
        return "needs root (run as root, or ./dev.sh test as root)"
    if item.get_closest_marker("vm") and shutil.which("qemu-system-x86_64") is None:
        return "needs qemu-system-x86_64 (./dev.sh setup installs it)"
    if item.get_closest_marker("oracle") and not (ORACLES / "systemd-tmpfiles-new").exists():
        return f"needs the reference systemd-tmpfiles builds in {ORACLES} (tools/fetch-oracles)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing(item)
    if reason is None:
        return
    if REQUIRE_ALL:
        pytest.fail(f"prerequisite missing under FRESHROOT_REQUIRE_ALL=1: {reason}")
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under FRESHROOT_REQUIRE_ALL=1 every other skip (a skipif on a missing tool, a
    pytest.skip() in a test) is a failure too: in CI nothing may silently stop running.
    Expected failures (xfail) are not skips and stay as they are."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, which FRESHROOT_REQUIRE_ALL=1 does not allow: {reason}"


def _mounts_below(base: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        targets = [line.split()[4] for line in f]
    return [t for t in targets if t == base or t.startswith(base + "/")]


@pytest.fixture(autouse=True)
def _no_mount_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests mount only inside private mount namespaces: a mount left in ours (the host's),
    below this worker's scratch directories, fails the test that left it."""
    factory = request.config._tmp_path_factory  # type: ignore[attr-defined]
    base = str(factory.getbasetemp())
    before = set(_mounts_below(base))
    yield
    leaked = sorted(set(_mounts_below(base)) - before)
    if leaked:
        for target in reversed(leaked):  # clean up, so one leak does not fail the tests after it
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        pytest.fail(f"the test left mounts in the host's mount namespace: {leaked}")


@pytest.fixture
def oracles() -> Path:
    """The directory holding systemd-tmpfiles-252, systemd-tmpfiles-new and tests/."""
    return ORACLES


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory that is removed even when a test chmod'ed or chattr'ed things in it."""
    yield tmp_path
    for dirpath, dirnames, _ in os.walk(tmp_path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                with contextlib.suppress(OSError):
                    os.chmod(p, 0o700)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A scratch directory with a short path (below /tmp), for what a long --basetemp would
    break: a listening AF_UNIX socket's path must fit in 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="freshroot-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def keyset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ssh-keygen -A's host keys, made once per module (tests/hostkeys.py)."""
    from tests.hostkeys import keyset as make

    return make(tmp_path_factory.mktemp("keyset"))


@pytest.fixture
def keys(keyset: Path, tmp_path: Path) -> Path:
    """A fresh copy of the host key set, to spoil."""
    return Path(shutil.copytree(keyset, tmp_path / "keys"))
