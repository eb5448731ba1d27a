"""The clean walk's age decision at the cutoff itself, to the nanosecond, and its statx retry.

The walk decides on the seconds of the timestamps alone and reads the nanoseconds only when
those tie with the cutoff's second (freshroot.tmpfiles.clean, _dir_cleanup). systemd's
needs_cleanup() keeps an entry whose timestamp is at or after the cutoff; these pin that rule
down where the shortcut could get it wrong, for one, two and four timestamps. systemd cannot be
given a fixed "now", so the cutoff is fixed here through sweep(now_ns=...) instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freshroot.fs.ops import open_root
from freshroot.fs.statx import RawStatx
from freshroot.tmpfiles.clean import Decision, sweep
from freshroot.tmpfiles.load import LoadOptions, load
from freshroot.tmpfiles.messages import Level, stderr_reporter

SECOND = 1_000_000_000
AGE = 10  # seconds: the lines below say 10s
CUT_S = 4_000_000_000  # the cutoff's second: in 2096, so that every real timestamp is older
CUTOFF = CUT_S * SECOND + 500_000_000  # the cutoff itself: half a second into CUT_S
NOW = CUTOFF + AGE * SECOND
OLDER = CUT_S * SECOND - 5 * SECOND

# name -> nanoseconds of the timestamp under test; whether it is old (< CUTOFF).
STAMPS = {
    "just-before": (CUTOFF - 1, True),
    "at": (CUTOFF, False),
    "just-after": (CUTOFF + 1, False),
    "second-before": (CUT_S * SECOND - 1, True),
    "second-after": ((CUT_S + 1) * SECOND, False),
    "same-second-start": (CUT_S * SECOND, True),
}


def _sweep(root: Path, line: str, **kwargs: object) -> bool:
    conf = root.parent / "c.conf"
    conf.write_text(line + "\n")
    config = load(LoadOptions(configs=(str(conf),), root=str(root)), stderr_reporter(Level.ERR))
    fd = open_root(str(root))
    try:
        return sweep(config, fd, clean=True, root=str(root), now_ns=NOW, **kwargs)  # type: ignore[arg-type]
    finally:
        os.close(fd)


def _tree(root: Path, *, stamp_is: str) -> None:
    """A file per STAMPS entry below root/t: the timestamp under test (``stamp_is`` "mtime" or
    "atime") at its value, the other one older than the cutoff."""
    (root / "t").mkdir(parents=True)
    for name, (ns, _) in STAMPS.items():
        p = root / "t" / name
        p.write_text("x")
        os.utime(p, ns=(ns, OLDER) if stamp_is == "atime" else (OLDER, ns))


@pytest.mark.parametrize(("line", "stamp_is"), [
    ("d /t - - - m:10s", "mtime"),  # one timestamp
    ("d /t - - - am:10s", "mtime"),  # two: the one under test second (offset order: atime, mtime)
    ("d /t - - - am:10s", "atime"),  # two: the one under test first
    ("d /t - - - abcm:10s", "mtime"),  # four (birth and change time: now, long before the cutoff)
    ("d /t - - - abcm:10s", "atime"),
])
def test_a_file_is_old_only_when_every_stamp_is_before_the_cutoff(tmp_path: Path, line: str, stamp_is: str) -> None:
    root = tmp_path / "r"
    _tree(root, stamp_is=stamp_is)
    assert _sweep(root, line)
    left = sorted(os.listdir(root / "t"))
    assert left == sorted(name for name, (_, old) in STAMPS.items() if not old)


def test_explain_says_which_stamp_keeps_a_file_at_the_cutoff(tmp_path: Path) -> None:
    root = tmp_path / "r"
    _tree(root, stamp_is="mtime")
    heard: list[Decision] = []
    assert _sweep(root, "d /t - - - am:10s", dry_run=True, explain=heard.append)
    said = {d.path.rsplit("/", 1)[-1]: (d.action, d.reason) for d in heard}
    for name, (_, old) in STAMPS.items():
        if old:
            assert said[name] == ("remove", "older than the age"), name
        else:
            assert said[name] == ("keep", "its modify time is newer than the cutoff"), name
    assert sorted(os.listdir(root / "t")) == sorted(STAMPS)  # a dry run


def test_a_statx_that_fails_once_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk's statx saves no errno; after a failure it makes the call again (saving errno).
    A call that succeeds then is used; an entry gone by then (ENOENT) is passed over quietly."""
    root = tmp_path / "r"
    _tree(root, stamp_is="mtime")
    real_init = RawStatx.__init__
    failed: list[bytes] = []

    def flaky_init(self: RawStatx) -> None:
        real_init(self)
        fn = self.fn

        def once(dir_fd: int, name: bytes, flags: int, mask: int, ref: object) -> int:
            if name and name not in failed:
                failed.append(name)
                return -1
            return int(fn(dir_fd, name, flags, mask, ref))

        self.fn = once  # type: ignore[assignment]

    monkeypatch.setattr(RawStatx, "__init__", flaky_init)
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda fd: [*real_listdir(fd), "vanished"])
    problems: list[str] = []
    assert _sweep(root, "d /t - - - m:10s", log=problems.append)
    assert problems == []
    assert b"vanished" in failed
    assert b"at" in failed
    assert sorted(real_listdir(root / "t")) == sorted(name for name, (_, old) in STAMPS.items() if not old)
