"""The target root's passwd and group, including the odd files real systems have."""

from __future__ import annotations

import os

from freshroot.fs.accounts import Accounts
from tests.fs.helpers import Root

PASSWD = (
    "# a comment\n"
    "\n"
    "root:x:0:0:root:/root:/bin/bash\n"
    "+nisuser::::::\n"
    "-excluded:x:5:5::/:/bin/false\n"
    "short:x:7\n"
    "baduid:x:abc:1::/:/bin/sh\n"
    "unicode:x:\u00b2:1::/:/bin/sh\n"
    "huge:x:4294967295:1::/:/bin/sh\n"
    ":x:8:8::/:/bin/sh\n"
    "alice:x:1000:1000:Alice \u2028Liddell:/home/alice:/bin/zsh\n"
    "alice:x:1001:1001:second alice:/:/bin/sh\n"
    "noshell:x:1002:nogid::/home/n\n"
    "crlf:x:1003:1003::/home/c:/bin/sh\r\n"
    "caf\udce9:x:1004:1004::/:/bin/sh"  # not UTF-8, and no newline at the end
)
GROUP = "root:x:0:\nwheel:x:10:alice,bob,\nbad:x:x:\nusers:x:100\nusers2:x:100:\nwheel:x:11:\n"


def test_odd_passwd_lines() -> None:
    a = Accounts.parse(PASSWD, GROUP)
    assert [u.name for u in a.users] == ["root", "alice", "alice", "noshell", "crlf", "caf\udce9"]
    alice = a.user("alice")
    assert alice is not None
    assert (alice.uid, alice.gecos, alice.shell) == (1000, "Alice \u2028Liddell", "/bin/zsh")  # first wins
    assert a.user(1001) is not None
    assert a.user("1001") == a.user(1001)  # a numeric string is a uid, as chown takes it
    noshell = a.user("noshell")
    assert noshell is not None
    assert (noshell.gid, noshell.shell) == (65534, "")
    assert a.user("nisuser") is None
    assert a.user("excluded") is None
    assert a.user("baduid") is None
    assert a.user("\u00b2") is None
    assert a.user(4294967295) is None
    assert a.user("caf\udce9") is not None


def test_odd_group_lines() -> None:
    a = Accounts.parse(PASSWD, GROUP)
    wheel = a.group("wheel")
    assert wheel is not None
    assert (wheel.gid, wheel.members) == (10, ("alice", "bob"))
    assert a.group("bad") is None
    assert a.group("users") is None  # three fields: not a group line
    users2 = a.group(100)
    assert users2 is not None
    assert users2.name == "users2"


def test_load_reads_the_target_root_through_chase(root: Root) -> None:
    root.p("etc").mkdir()
    root.p("usr/share").mkdir(parents=True)
    root.p("usr/share/passwd").write_bytes(b"sshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n\xff:x:9:9::/:\n")
    os.symlink("/usr/share/passwd", root.p("etc/passwd"))  # absolute: must resolve inside the root
    a = Accounts.load(root.fd)
    sshd = a.user("sshd")
    assert sshd is not None
    assert sshd.uid == 105
    assert a.user(os.fsdecode(b"\xff")) is not None
    assert a.groups == ()  # no /etc/group: empty, not the host's


def test_load_of_an_empty_root(root: Root) -> None:
    a = Accounts.load(root.fd)
    assert (a.users, a.groups) == ((), ())
    assert a.user("root") is None
