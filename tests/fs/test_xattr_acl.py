"""Extended attributes and POSIX ACLs on fds, checked against getfattr/getfacl/setfacl."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freshroot.errors import ConfigError
from freshroot.fs import acl, xattr
from freshroot.fs.accounts import Accounts
from freshroot.fs.acl import Acl, Entry, Tag
from tests.fs.helpers import Root

ACCOUNTS = Accounts.parse(
    "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n42:x:4242:4242::/:/bin/sh\n",
    "root:x:0:\nstaff:x:50:\nwheel:x:10:alice\n",
)


def o_path(root: Root, name: str) -> int:
    return os.open(root.p(name), os.O_PATH | os.O_NOFOLLOW)


def test_xattr_round_trip_on_o_path_fds(root: Root) -> None:
    root.p("f").write_text("")
    root.p("d").mkdir()
    for name in ("f", "d"):  # user.* exist only on regular files and directories
        fd = o_path(root, name)
        try:
            xattr.set_fd(fd, "user.a", b"1\x00\xff")
            with pytest.raises(FileExistsError):
                xattr.set_fd(fd, "user.a", b"2", create=True)
            assert xattr.get_fd(fd, "user.a") == b"1\x00\xff"
            assert xattr.get_fd(fd, "user.none") is None
            assert xattr.list_fd(fd) == ["user.a"]
            assert xattr.remove_fd(fd, "user.a")
            assert not xattr.remove_fd(fd, "user.a")
            assert xattr.get_all_fd(fd) == {}
        finally:
            os.close(fd)


def test_xattr_on_a_symlink_fd_acts_on_the_link_never_its_target(root: Root) -> None:
    """The magic link of an O_PATH fd of a symlink lands on the link itself and is not followed
    further: user.* is refused (EPERM, as systemd-tmpfiles reports it), the target's attributes
    are neither read nor changed."""
    root.p("f").write_text("")
    os.setxattr(root.p("f"), "user.t", b"target's")
    os.symlink("f", root.p("l"))
    fd = o_path(root, "l")
    try:
        with pytest.raises(PermissionError) as e:
            xattr.set_fd(fd, "user.a", b"1")
        assert e.value.errno == errno.EPERM
        assert xattr.get_fd(fd, "user.t") is None
        assert "user.t" not in xattr.list_fd(fd)
        with pytest.raises(PermissionError):
            xattr.remove_fd(fd, "user.t")
        xattr.set_fd(fd, "trusted.on-the-link", b"1")
        assert os.listxattr(root.p("l"), follow_symlinks=False) == ["trusted.on-the-link"]
    finally:
        os.close(fd)
    assert os.listxattr(root.p("f")) == ["user.t"]  # nothing went to the target
    assert os.getxattr(root.p("f"), "user.t") == b"target's"


def test_parse_tmpfiles_acl_text() -> None:
    spec = acl.parse("u:alice:rwX,g:wheel:r-x,d:u::rwx,d:g::r-x,d:o::-,u:1234:r,o::r,m::rw", ACCOUNTS)
    assert spec.access == Acl((Entry(Tag.USER, 1234, 4), Entry(Tag.GROUP, 10, 5), Entry(Tag.MASK, None, 6),
                               Entry(Tag.OTHER, None, 4)))  # an explicit mask is kept as given
    assert spec.access_exec == Acl((Entry(Tag.USER, 1000, 7),))
    assert spec.default is not None
    assert spec.default.to_text() == "user::rwx,group::r-x,other::---"


def test_mask_is_computed_as_setfacl_does() -> None:
    spec = acl.parse("user:alice:rw-,group::r--,g:staff:--x,other::---", ACCOUNTS)
    assert spec.access is not None
    mask = spec.access.get(Tag.MASK)
    assert mask is not None
    assert mask.perm == 7  # rw- | r-- | --x
    assert acl.parse("u::rwx,g::r,o::r", ACCOUNTS).access == Acl.from_mode(0o744)  # minimal: no mask
    raw = acl.parse("u:alice:rw,g::r,o::-", ACCOUNTS, want_mask=False).access
    assert raw is not None
    assert raw.get(Tag.MASK) is None


def test_names_resolve_through_the_target_root_only() -> None:
    spec = acl.parse("u:42:r", ACCOUNTS)  # a digit string is an id, even if a user has that name
    assert spec.access is not None
    assert spec.access.entries[0].qualifier == 42
    with pytest.raises(ConfigError, match="no user 'nosuchuser' in the target root"):
        acl.parse("u:nosuchuser:r", ACCOUNTS)


@pytest.mark.parametrize("text", ["u:alice", "x:alice:r", "u:alice:rwz", "o:alice:r", "z:u:alice:r",
                                  "d:u:alice:r:x", "u:alice:", ""])
def test_bad_acl_text_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid ACL"):
        acl.parse(text, ACCOUNTS)


def test_encode_decode_round_trip() -> None:
    a = Acl.of([Entry(Tag.OTHER, None, 0), Entry(Tag.GROUP, 7, 5), Entry(Tag.USER_OBJ, None, 7),
                Entry(Tag.USER, 3, 1), Entry(Tag.USER, 2, 2), Entry(Tag.GROUP_OBJ, None, 4),
                Entry(Tag.MASK, None, 7)])
    assert [e.tag for e in a.entries] == [Tag.USER_OBJ, Tag.USER, Tag.USER, Tag.GROUP_OBJ, Tag.GROUP, Tag.MASK,
                                         Tag.OTHER]
    assert Acl.decode(a.encode()) == a
    with pytest.raises(ValueError, match="not a POSIX ACL"):
        Acl.decode(b"\x02\x00\x00\x00\x01")
    with pytest.raises(ValueError, match="version"):
        Acl.decode(b"\x01\x00\x00\x00")


def test_set_and_get_agree_with_getfacl_and_setfacl(root: Root) -> None:
    root.p("d").mkdir()
    root.p("f").write_text("")
    spec = acl.parse("u:1000:rwx,g:50:r,d:u::rwx,d:g::r-x,d:o::-,d:u:1000:r-x", ACCOUNTS)
    assert spec.access is not None
    assert spec.default is not None
    fd = o_path(root, "d")
    try:
        acl.set_fd(fd, spec.access.with_base(0o750))
        acl.set_fd(fd, spec.default.with_mask_if_needed(), default=True)
        out = subprocess.run(["getfacl", "-n", "-p", "-c", str(root.p("d"))], check=True,
                             capture_output=True, text=True).stdout.split()
        assert out == ["user::rwx", "user:1000:rwx", "group::r-x", "group:50:r--", "mask::rwx", "other::---",
                       "default:user::rwx", "default:user:1000:r-x", "default:group::r-x", "default:mask::r-x",
                       "default:other::---"]
        assert acl.remove_default_fd(fd)
        assert acl.get_fd(fd, default=True) is None
    finally:
        os.close(fd)
    subprocess.run(["setfacl", "-m", "u:4242:r,g:10:rw", str(root.p("f"))], check=True)
    fd = o_path(root, "f")
    try:
        got = acl.get_fd(fd)
        assert got is not None
        assert got.to_text(ACCOUNTS) == "user::rw-,user:42:r--,group::r--,group:wheel:rw-,mask::rw-,other::r--"
    finally:
        os.close(fd)


def test_invalid_acl_is_refused_before_the_kernel() -> None:
    with pytest.raises(ValueError, match="no mask"):
        Acl.from_mode(0o644).merged(Acl((Entry(Tag.USER, 5, 7),))).validate()
    with pytest.raises(ValueError, match="other::"):
        Acl((Entry(Tag.USER_OBJ, None, 7), Entry(Tag.GROUP_OBJ, None, 7))).validate()


entries = st.lists(
    st.one_of(
        st.builds(Entry, st.sampled_from([Tag.USER_OBJ, Tag.GROUP_OBJ, Tag.MASK, Tag.OTHER]), st.none(),
                  st.integers(0, 7)),
        st.builds(Entry, st.sampled_from([Tag.USER, Tag.GROUP]), st.integers(0, 0xFFFFFFFE), st.integers(0, 7)),
    ),
    min_size=1, max_size=12,
)


@given(entries)
def test_text_and_binary_forms_round_trip(es: list[Entry]) -> None:
    a = Acl.of(es)
    assert Acl.decode(a.encode()) == a
    spec = acl.parse(a.to_text(ACCOUNTS), ACCOUNTS, want_mask=False)  # names where known, ids elsewhere
    assert spec.access == a
    d = acl.parse(a.to_text(ACCOUNTS, default=True), ACCOUNTS, want_mask=False)
    assert d.default == a
    assert d.access is None
