"""freshroot-tmpfiles' refusals of its arguments, word for word against systemd-tmpfiles 262
(the program's name aside): usage errors as getopt_long words them, --image-policy checked with
or without --image, a --root that cannot be opened. Both run as programs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tmpfiles.syntax_oracle import clean_env

pytestmark = [pytest.mark.oracle]

OURS = Path(sys.executable).with_name("freshroot-tmpfiles")

ARGS = (
    ("--bogus",), ("--bogus=3",), ("-q",), ("-nq",), ("-E3",), ("--create", "--root"), ("--create=1",),
    ("--dry-run=q",), ("--c",), ("--create", "--prefix"), (), ("--purge",),
    ("--image-policy=bogus", "--create", "{conf}"), ("--image-policy=root=x", "--create", "{conf}"),
    ("--image-policy=ROOT=verity", "--create", "{conf}"), ("--image-policy=usr=absent:usr=open", "--create", "{conf}"),
    ("--image-policy=:", "--create", "{conf}"), ("--image-policy=root=verity+", "--create", "{conf}"),
    ("--image-policy=usr=absent:bogus", "--create", "{conf}"),
    ("--image-policy=root=verity+signed:usr=absent", "--create", "--root={scratch}/root", "{conf}"),
    ("--image-policy=*", "--create", "--root={scratch}/root", "{conf}"),
    ("--root=/nonexistent-freshroot-test", "--create", "{conf}"), ("--root={conf}", "--create", "{conf}"),
)


def _run(binary: Path, argv: list[str]) -> tuple[int, str]:
    proc = subprocess.run([str(binary), *argv], capture_output=True, env=clean_env(), timeout=60, check=False)
    return proc.returncode, proc.stderr.decode().replace(f"{binary.name}:", "PROG:")


@pytest.mark.parametrize("args", ARGS, ids=" ".join)
def test_refusal_matches_262(args: tuple[str, ...], oracles: Path, tmp_path: Path) -> None:
    if not OURS.exists():
        pytest.skip(f"{OURS} not installed in this venv")
    conf = tmp_path / "a.conf"
    conf.write_text(f"d {tmp_path}/made-by-the-run\n")
    (tmp_path / "root").mkdir()
    argv = [a.format(conf=conf, scratch=tmp_path) for a in args]
    theirs = _run(oracles / "systemd-tmpfiles-new", argv)
    ours = _run(OURS, argv)
    assert theirs == ours
    assert not os.path.exists(tmp_path / "made-by-the-run")
