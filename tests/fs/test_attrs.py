"""chattr flags: tmpfiles' h-line letters, set with a mask, checked with lsattr."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from freshroot.errors import ConfigError
from freshroot.fs import attrs
from tests.fs.helpers import Root


def lsattr(path: object) -> str:
    return subprocess.run(["lsattr", "-d", str(path)], check=True, capture_output=True, text=True).stdout.split()[0]


def test_parse_spec_as_tmpfiles() -> None:
    assert attrs.parse_spec("+iA") == attrs.AttrSpec(attrs.IMMUTABLE | attrs.NOATIME, attrs.IMMUTABLE | attrs.NOATIME)
    assert attrs.parse_spec("iA") == attrs.parse_spec("+iA")  # no prefix means add
    assert attrs.parse_spec("-d") == attrs.AttrSpec(0, attrs.NODUMP)
    assert attrs.parse_spec("=d") == attrs.AttrSpec(attrs.NODUMP, attrs.ALL)  # = clears every other letter
    assert attrs.parse_spec("=") == attrs.AttrSpec(0, attrs.ALL)
    assert attrs.letters(attrs.NOATIME | attrs.NOCOW | attrs.NODUMP) == "AdC"


@pytest.mark.parametrize("text", ["", "+", "-", "+Z", "i!"])
def test_bad_spec_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="attribute"):
        attrs.parse_spec(text)


@pytest.mark.root
def test_set_flags_with_a_mask(root: Root) -> None:
    root.p("f").write_text("")
    fd = os.open(root.p("f"), os.O_RDONLY)
    try:
        first = attrs.set_flags(fd, attrs.NODUMP | attrs.NOATIME, attrs.NODUMP | attrs.NOATIME)
        assert first.changed
        assert first.complete
        assert "d" in lsattr(root.p("f"))
        assert "A" in lsattr(root.p("f"))
        again = attrs.set_flags(fd, attrs.NODUMP, attrs.NODUMP)
        assert not again.changed  # idempotent
        spec = attrs.parse_spec("-A")
        attrs.set_flags(fd, spec.value, spec.mask)
        assert "A" not in lsattr(root.p("f"))
        assert "d" in lsattr(root.p("f"))  # outside the mask: untouched
        assert attrs.get_flags(fd) & attrs.NODUMP
    finally:
        os.close(fd)


def test_refuses_special_files(root: Root) -> None:
    os.mkfifo(root.p("fifo"))
    fd = os.open(root.p("fifo"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(OSError, match="regular files and directories") as e:
            attrs.set_flags(fd, attrs.NODUMP, attrs.NODUMP)
        assert e.value.errno == errno.ENOTTY
    finally:
        os.close(fd)
