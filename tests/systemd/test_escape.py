"""freshroot.systemd.escape against systemd itself: systemd-escape (escape, --path, --unescape)
on generated strings and paths, and the fstab generator for unit_name_from_path() (the only
place systemd 252 exposes its hashed names for long paths)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from freshroot.systemd.escape import (
    EscapeError,
    escape,
    escape_path,
    unescape,
    unescape_path,
    unit_name_from_path,
)

SYSTEMD_ESCAPE = shutil.which("systemd-escape")
FSTAB_GENERATOR = Path("/usr/lib/systemd/system-generators/systemd-fstab-generator")
pytestmark = pytest.mark.skipif(SYSTEMD_ESCAPE is None, reason="needs systemd-escape (./dev.sh setup)")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that matter to the rules: the valid set, the escaped ASCII ones, '-', '\\', '.',
# spaces, and multi-byte UTF-8.
CHARS = st.sampled_from([*"aZ09:_.-\\ @%~é€\t\n", "\U0001f600", "ß", "x", "y"])
COMPONENT = st.one_of(
    st.text(CHARS, min_size=1, max_size=12).filter(lambda s: "/" not in s),
    st.sampled_from([".", "..", ".hidden", "-", "a-b", "..x"]),
).map(lambda s: s.encode())
RAW_COMPONENT = st.binary(min_size=1, max_size=6).filter(lambda b: b"\0" not in b and b"/" not in b)


@st.composite
def paths(draw: st.DrawFn) -> bytes:
    """Absolute or relative paths with repeated, leading and trailing slashes, dot components,
    and now and then bytes that are not UTF-8."""
    parts = draw(st.lists(st.one_of(COMPONENT, RAW_COMPONENT) if draw(st.booleans()) else COMPONENT, max_size=5))
    seps = [draw(st.sampled_from([b"/", b"/", b"//", b"///"])) for _ in parts]
    path = b"".join(s + p for s, p in zip(seps, parts, strict=True))
    if draw(st.booleans()) or not path:
        path = path.lstrip(b"/") if draw(st.booleans()) else path
    return path + draw(st.sampled_from([b"", b"", b"/", b"//"]))


def systemd_escape(args: list[bytes], *options: str) -> list[bytes] | None:
    """systemd-escape on many arguments in one call; None if it refused any of them."""
    assert SYSTEMD_ESCAPE is not None
    proc = subprocess.run([SYSTEMD_ESCAPE, *options, "--", *args], capture_output=True, check=False)
    if proc.returncode != 0:
        return None
    # Escaped names never contain white space, so the space-separated output splits exactly.
    out = proc.stdout.rstrip(b"\n").split(b" ")
    assert len(out) == len(args), (args, proc.stdout)
    return out


def ours(function, value: bytes) -> bytes | None:
    try:
        return os.fsencode(function(value))
    except EscapeError:
        return None


def check_batch(args: list[bytes], function, *options: str) -> None:
    mine = [ours(function, a) for a in args]
    # systemd-escape stops at the first input it refuses: what we accept goes in one call,
    # what we refuse one at a time (systemd must refuse each of them too).
    accepted = [a for a, m in zip(args, mine, strict=True) if m is not None]
    if accepted:
        assert systemd_escape(accepted, *options) == [m for m in mine if m is not None]
    for arg, m in zip(args, mine, strict=True):
        if m is None:
            assert systemd_escape([arg], *options) is None, arg


@SETTINGS
@given(st.lists(paths(), min_size=1, max_size=40))
@example([b"/", b"", b"//", b"/a//b/", b"/.dot", b"/a/.b", b"/a/..", b"./a", b".", b"/-", b"/a b/\xc3\xa9"])
def test_escape_path_matches_systemd_escape(batch):
    check_batch(batch, escape_path, "--path")


@SETTINGS
@given(st.lists(paths(), min_size=1, max_size=40))
@example([b"", b".", b".a", b"a.b", b"/a//", b"a-b", b"/", b"\xff\xfe"])
def test_escape_matches_systemd_escape(batch):
    check_batch(batch, escape)


def test_long_components_and_paths_are_refused_like_systemd():
    for path in [b"/" + b"a" * 255, b"/" + b"a" * 256, b"/x/" + b"b" * 300, b"/" + b"/".join([b"c" * 200] * 21)]:
        check_batch([path], escape_path, "--path")


ESCAPED = st.lists(
    st.one_of(
        st.sampled_from(["-", "\\x2d", "\\x2e", "\\x2E", "\\x00", "\\x2f", "\\", "\\x", "\\x4", "\\y", ".", ".."]),
        st.text(st.sampled_from(list("ab:_.é ")), min_size=1, max_size=4),
    ),
    max_size=8,
).map("".join)


@settings(max_examples=50, deadline=None)
@given(ESCAPED)
@example("")
@example("-")
@example("a--b")
@example("a-\\x2e\\x2e-b")
@example("\\x00")
def test_unescape_matches_systemd_escape(value):
    # One argument a call: unescaped strings may contain spaces, so outputs cannot be split.
    raw = value.encode()
    for function, options in ((unescape, ["--unescape"]), (unescape_path, ["--unescape", "--path"])):
        assert SYSTEMD_ESCAPE is not None
        proc = subprocess.run([SYSTEMD_ESCAPE, *options, "--", raw], capture_output=True, check=False)
        theirs = proc.stdout[:-1] if proc.returncode == 0 else None
        assert ours(function, raw) == theirs, (function.__name__, value)


@SETTINGS
@given(paths())
def test_unescape_path_undoes_escape_path(path):
    try:
        escaped = escape_path(path)
    except EscapeError:
        return
    if path.startswith(b"/"):
        parts = [p for p in path.split(b"/") if p not in (b"", b".")]
        assert os.fsencode(unescape_path(escaped)) == b"/" + b"/".join(parts)


def _fstab_field(path: bytes) -> bytes:
    # libmount reads fstab fields with octal escapes for white space and backslashes.
    return b"".join(b"\\%03o" % c if c in b" \t\n\\#" else bytes([c]) for c in path)


@pytest.mark.skipif(not FSTAB_GENERATOR.exists(), reason="needs systemd's fstab generator")
def test_unit_name_from_path_matches_systemd_fstab_generator(tmp_path):
    # Mount points of every length around the 256-byte unit name limit, where systemd
    # switches to hashed names, with characters that escape to 4 bytes.
    where = []
    for n in range(230, 262):
        where.append(b"/mnt/" + b"x" * n)
        where.append(b"/mnt/a b-" + "é".encode() * (n // 2))
        where.append(b"/mnt/d/" + b"y" * (n // 2) + b"/" + b"z-" * (n // 4))
    where = list(dict.fromkeys(where))  # the generator refuses duplicate mount points
    fstab = tmp_path / "fstab"
    fstab.write_bytes(b"".join(b"none " + _fstab_field(w) + b" tmpfs defaults 0 0\n" for w in where))
    out = tmp_path / "out"
    out.mkdir()
    env = {"SYSTEMD_FSTAB": str(fstab), "SYSTEMD_PROC_CMDLINE": "", "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run([FSTAB_GENERATOR, out, out, out], env=env, check=False, capture_output=True, text=True)
    theirs = {p.name for p in out.iterdir() if p.name.endswith(".mount")}
    mine = {w: ours(lambda p: unit_name_from_path(p, ".mount"), w) for w in where}
    assert theirs == {os.fsdecode(name) for name in mine.values() if name is not None}
    # A component over 255 bytes has no unit name: the generator fails for exactly those.
    refused = [w for w, name in mine.items() if name is None]
    assert proc.stderr.count("Failed to generate unit name") == len(refused) > 0
    assert any("_" in name and len(name) == 255 for name in theirs)  # the hashed fallback was exercised


def test_unit_name_from_path():
    assert unit_name_from_path("/", ".mount") == "-.mount"
    assert unit_name_from_path("/.snapshots", ".mount") == "\\x2esnapshots.mount"
    assert unit_name_from_path("/var/lib/my-app", ".mount") == "var-lib-my\\x2dapp.mount"
    assert unit_name_from_path("/home/alice/.ssh/", ".automount") == "home-alice-.ssh.automount"
    with pytest.raises(EscapeError):
        unit_name_from_path("/var/../etc", ".mount")
    with pytest.raises(EscapeError):
        unit_name_from_path("/var", "mount")
