"""Issue 14 (#1, #9, #10, #11): declarations `freshroot config check` used to accept (or
crash on) and that now exit 65 with ``file:line: what is wrong``.

Each case went through ``config check`` on the old code with exit 0 ("valid") or 1 (an
internal error with a traceback's last line); every value here reaches an account file, a
unit, a path or a mode.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from freshroot.cli import main

LONG = "x" * 256

# (name, declaration, the line named, words the message must hold)
CASES = [
    # 1: account-file line injection
    ("hashed-password", '[users.carol]\nhashed-password = "!\\nroot::0:0:99999:7:::"\n', 2, "control character"),
    ("hashed-password-colon", '[users.carol]\nhashed-password = "a:b"\n', 2, "':'"),
    ("members", '[groups.g]\nmembers = ["alice\\neve:x:0:alice"]\n', 2, "user name"),
    ("extra-groups", '[users.carol]\nextra-groups = ["wheel,root"]\n', 2, "group name"),
    ("primary group", '[users.carol]\ngroup = "a:b"\n', 2, "group name"),
    ("description", '[users.carol]\ndescription = "x\\u0000y"\n', 2, "control character"),
    ("shell", '[users.carol]\nshell = "/bin/sh\\n"\n', 2, "control character"),
    ("user name", '[users."a\\nb"]\n', 1, "user name"),
    ("non-ascii name", '[groups."é"]\n', 1, "group name"),
    # 9: modes
    ("mode -1", '[persist."/persist"]\ndirectories = [{ path = "/var/x", mode = -1 }]\n', 2, "not a file mode"),
    ("mode too big", '[persist."/persist"]\ndirectories = [{ path = "/var/x", mode = 4096 }]\n', 2, "not a file mode"),
    ("mode bool", '[persist."/persist"]\ndirectories = [{ path = "/var/x", mode = true }]\n', 2, "octal mode"),
    ("mode float", '[persist."/persist"]\nparent = { mode = 7.5 }\ndirectories = ["/x"]\n', 2, "octal mode"),
    ("etc mode -1", '[etc.motd]\ntext = "hi"\nmode = "-1"\n', 3, "octal mode"),
    # 10: paths and options no unit can carry
    ("trailing space", '[persist."/persist"]\ndirectories = ["/var/x "]\n', 2, "white space"),
    ("newline", '[persist."/persist"]\ndirectories = ["/var/x\\ny"]\n', 2, "control character"),
    ("trailing backslash", '[persist."/persist"]\ndirectories = ["/var/x\\\\"]\n', 2, "backslash"),
    ("long component", f'[persist."/persist"]\ndirectories = ["/var/{LONG}"]\n', 2, "255 bytes"),
    ("long path", f'[persist."/persist"]\nfiles = ["{("/" + "y" * 200) * 21}"]\n', 2, "4096"),
    ("long in storage", f'[persist."/{"s" * 250}"]\nfiles = ["{("/" + "y" * 200) * 20}"]\n', 2, "too long"),
    ("storage newline", '[persist."/per\\nsist"]\ndirectories = ["/x"]\n', 1, "control character"),
    ("home-relative", '[persist."/persist"]\nusers.alice.directories = ["a\\\\"]\n', 2, "backslash"),
    ("option newline", '[persist."/persist"]\ndirectories = [{ path = "/x", options = ["x-a\\nb"] }]\n', 2,
     "control character"),
    ("storage option newline", '[persist."/persist"]\nmount-options = ["ro\\n"]\ndirectories = ["/x"]\n', 2,
     "control character"),
    ("option comma", '[persist."/persist"]\ndirectories = [{ path = "/x", options = ["x-a,ro"] }]\n', 2,
     "one option per array item"),
    # 11: odd input that was an internal error, or silently accepted
    ("superscript uid", '[persist."/persist"]\ndirectories = [{ path = "/x", user = "²" }]\n', 2, "not a valid name"),
    ("fullwidth uid", '[persist."/persist"]\ndirectories = [{ path = "/x", user = "\uff11\uff10\uff10\uff10" }]\n', 2,
     "not a valid name"),
    ("20-digit uid", '[persist."/persist"]\ndirectories = [{ path = "/x", group = "99999999999999999999" }]\n', 2,
     "not a valid id"),
    ("uid 65535", '[users.a]\nuid = 65535\n', 2, "not a valid id"),
    ("gid -1", '[groups.a]\ngid = -1\n', 2, "not a valid id"),
    ("NUL in an etc name", '[etc."a\\u0000b"]\ntext = "x"\n', 1, "NUL"),
    ("etc owner", '[etc.motd]\ntext = "x"\nuser = "²"\n', 3, "not a valid name"),
    ("etc source", '[etc.motd]\nsource = "/usr/share/x\\n"\n', 2, "control character"),
    ("deep arrays", "x = 1\ny = " + "[" * 3000 + "]" * 3000 + "\n", 2, "nested"),
    ("copy with symlink", '[persist."/persist"]\nfiles = [{ path = "/etc/x", migrate = "copy", how = "symlink" }]\n',
     2, 'how = "symlink"'),
    ("storage copy, file symlink",
     '[persist."/persist"]\nmigrate = "copy"\nfiles = [{ path = "/etc/x", how = "symlink" }]\n', 3, "migrate"),
    ("binsh NUL", '[environment]\nbinsh = "/bin/da\\u0000sh"\n', 2, "NUL"),
    ("snippet NUL", '[activation.x]\ntext = "true\\u0000"\n', 2, "NUL"),
    ("snippet name", '[activation."a\\tb"]\ntext = "true"\n', 1, "control characters"),
    ("tmpfiles rule NUL", '[tmpfiles]\nrules = ["d /x\\u0000 - - -"]\n', 2, "NUL"),
    # a vertical tab split the rendered rule in two for splitlines(): zip(strict=True) failed
    ("tmpfiles rule VT", '[tmpfiles.settings.a]\n[tmpfiles]\nrules = ["d /x - - - - a\\u000bb"]\n', 3, "argument"),
    ("tmpfiles settings name", '[tmpfiles.settings."a\\u0001"."/x".d]\n', 1, "control characters"),
    ("image description", '[portable.a]\nversion = "1"\nunits = ["a.service"]\ndescription = "x\\ny"\n', 4,
     "control character"),
]


@pytest.mark.parametrize(("declaration", "line", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_refuses_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          declaration: str, line: int, words: str) -> None:
    decl = tmp_path / "decl.toml"
    decl.write_text(declaration)
    code = main(["config", "check", "--config", str(decl)])
    err = capsys.readouterr().err
    assert code == 65, err
    assert re.search(rf"^freshroot: {re.escape(str(decl))}:{line}: ", err, re.MULTILINE), err
    assert words in err
    assert "internal error" not in err
    assert "\x00" not in err  # a message is printable text, whatever the value held


def test_symbolic_mode_is_refused_with_the_octal_to_write(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    decl = tmp_path / "decl.toml"
    decl.write_text('[persist."/persist"]\ndirectories = [{ path = "/x", mode = "u=rwx,g=rx,o=" }]\n')
    assert main(["config", "check", "--config", str(decl)]) == 65
    assert 'write mode = "0750"' in capsys.readouterr().err


@pytest.mark.parametrize("declaration", [
    '[persist."/persist"]\ndirectories = [{ path = "/x", mode = 0o750, user = 1000, group = "1000" }]\n',
    # "app" is declared: config check resolves it as the users step will create it.
    ('[persist."/persist"]\ndirectories = [{ path = "/srv/data dir-é", user = "app", mode = "0700" }]\n'
     '[users.app]\nsystem = true\n'),
    '[etc.motd]\ntext = "hi"\nmode = 0o600\nuser = 0\ngroup = "root"\n',
    ('[users.alice]\nextra-groups = ["wheel"]\nhashed-password = "$y$j9T$abc/def.$ghi"\n'
     'description = "Alice, Room 1"\n[groups.wheel]\nmembers = ["alice", "svc$"]\n'),
])
def test_check_still_accepts_what_is_right(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           declaration: str) -> None:
    decl = tmp_path / "decl.toml"
    decl.write_text(declaration)
    assert main(["config", "check", "--config", str(decl)]) == 0, capsys.readouterr().err


# One wrong entry in each activation section, two in some: every one is said at once, each at
# its own line (the sections were each stopped at their first error, and the plan's sections
# at the first wrong section).
EVERY_PROBLEM = """\
[etc."../shadow"]
text = "x"

[etc."a\\nb"]
text = "x"

[users."a b"]

[users.good]

[groups."c:d"]

[activation."a b"]
text = "true"

[activation.ok]
text = "true"

[activation."x/y"]
text = "true"

[environment]
binsh = "/bin/da\\u0000sh"
"""


def test_every_problem_of_the_activation_sections_at_once(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    decl = tmp_path / "decl.toml"
    decl.write_text(EVERY_PROBLEM)
    assert main(["config", "check", "--config", str(decl)]) == 65
    err = capsys.readouterr().err
    said = sorted(int(n) for n in re.findall(rf"^(?:freshroot: )?{re.escape(str(decl))}:(\d+): ", err, re.MULTILINE))
    assert said == [1, 4, 7, 11, 13, 19, 23], err
    assert "7 problems in the declaration; nothing was changed" in err
