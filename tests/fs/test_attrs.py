"""chattr flags: the one implementation (freshroot.fs.attrs), set with a mask on O_PATH fds,
checked with lsattr; tmpfiles' h-line letters read through it (freshroot.tmpfiles.fields)."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from freshroot.fs import attrs
from freshroot.tmpfiles.fields import parse_attributes
from tests.fs.helpers import Root


def lsattr(path: object) -> str:
    return subprocess.run(["lsattr", "-d", str(path)], check=True, capture_output=True, text=True).stdout.split()[0]


def test_h_line_letters_come_from_the_one_table() -> None:
    assert parse_attributes("+iA", "/x") == (attrs.IMMUTABLE | attrs.NOATIME, attrs.IMMUTABLE | attrs.NOATIME)
    assert parse_attributes("iA", "/x") == parse_attributes("+iA", "/x")  # no prefix means add
    assert parse_attributes("-d", "/x") == (0, attrs.NODUMP)
    assert parse_attributes("=d", "/x") == (attrs.NODUMP, attrs.ALL)  # = clears every other letter
    assert parse_attributes("=", "/x") == (0, attrs.ALL)
    assert attrs.letters(attrs.NOATIME | attrs.NOCOW | attrs.NODUMP) == "AdC"


@pytest.mark.parametrize("text", ["", "+", "-", "+Z", "i!"])
def test_bad_letters_are_refused_with_systemds_message(text: str) -> None:
    with pytest.raises(ValueError, match="attribute"):
        parse_attributes(text, "/x")


@pytest.mark.root
def test_change_flags_with_a_mask_on_an_o_path_fd(root: Root) -> None:
    root.p("f").write_text("")
    fd = os.open(root.p("f"), os.O_PATH | os.O_NOFOLLOW)
    try:
        both = attrs.NODUMP | attrs.NOATIME
        previous, final = attrs.change_flags(fd, both, both)
        assert (previous & both, final & both) == (0, both)
        assert "d" in lsattr(root.p("f"))
        assert "A" in lsattr(root.p("f"))
        assert attrs.change_flags(fd, attrs.NODUMP, attrs.NODUMP) == (final, final)  # idempotent
        value, mask = parse_attributes("-A", "/f")
        attrs.change_flags(fd, value, mask)
        assert "A" not in lsattr(root.p("f"))
        assert "d" in lsattr(root.p("f"))  # outside the mask: untouched
        assert attrs.get_flags(fd) & attrs.NODUMP
    finally:
        os.close(fd)


def test_refuses_special_files_without_opening_them(root: Root) -> None:
    """A FIFO is refused on its O_PATH fd: reopening it to issue the ioctl would block."""
    os.mkfifo(root.p("fifo"))
    fd = os.open(root.p("fifo"), os.O_PATH)
    try:
        with pytest.raises(OSError, match="regular files and directories") as e:
            attrs.change_flags(fd, attrs.NODUMP, attrs.NODUMP)
        assert e.value.errno == errno.ENOTTY
    finally:
        os.close(fd)
