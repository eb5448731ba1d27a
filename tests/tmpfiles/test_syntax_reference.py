"""Line by line against systemd-tmpfiles 262: the same messages, the same exit status, the same
paths created (dry run), and the good lines around a bad one still applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tmpfiles.syntax_oracle import compare_parse, make_root, our_created_paths, would_paths

pytestmark = pytest.mark.oracle

GOOD_BEFORE = "d /before\n"
GOOD_AFTER = "d /after\n"

# Each case: one or more lines placed between two good lines.
CASES: dict[str, str] = {
    # every type, plainly
    "types": "f /f1 0600 - - - x\nF /f2\nf+ /f3\nw /w1 - - - - x\nw+ /w2 - - - - y\nd /d1\nD /d2 0700\n"
             "e /e1\nv /v1\nq /q1\nQ /Q1\np /p1\np+ /p2\nL /l1 - - - - /tgt\nL+ /l2\nL? /l3 - - - - /etc\n"
             "c /c1 - - - - 1:3\nc+ /c2 - - - - 1:5\nb /b1 - - - - 7:0\nb+ /b2 - - - - 7:1\nC /c3 - - - - /etc\n"
             "C+ /c4 - - - - /etc\nx /x1\nX /x2\nr /r1\nR /R1\nz /z1 0600\nZ /z2\nt /t1 - - - - user.a=b\n"
             "T /t2 - - - - user.a=b\nh /h1 - - - - +i\nH /h2 - - - - -a\na /a1 - - - - u::rwx\n"
             "a+ /a2 - - - - u::rwx\nA /a3 - - - - u::rwx\nA+ /a4 - - - - u::rwx\nk /k1 - - - - cap_net_raw+ep\n"
             "K /k2 - - - - cap_net_raw+ep\nm /m1 0644\n",
    # modifiers
    "boot-skipped": "d! /boot1\nf!- /boot2\n",
    "all-modifiers": "f!-=~$+ /mods - - - - aGVsbG8=\nL?+ /lq - - - - /etc\n",
    "unknown-modifier": "d* /star\n",
    "repeated-modifier": "d-- /dash\n",
    "purge-on-r": "r$ /rp\n",
    "question-on-f": "f? /fq\n",
    "base64-on-L": "L~ /lb - - - - YQ==\n",
    "base64-on-C": "C~ /cb - - - - YQ==\n",
    "base64-on-c": "c~ /cd - - - - 1:3\n",
    "base64-on-t": "t~ /tb - - - - YQ==\n",
    "base64-on-a": "a~ /ab - - - - YQ==\n",
    "base64-on-h": "h~ /hb - - - - YQ==\n",
    "base64-on-k": "k~ /kb - - - - YQ==\n",
    "bad-base64": "f~ /fb - - - - !!!\n",
    "credential-no-name": "f^ /fc\n",
    "credential-bad-name": "f^ /fc - - - - a/b\n",
    "credential-missing": "f^ /fc - - - - nosuch\n",
    # types
    "unknown-type": "y /unknown\n",
    "type-too-long-unknown": "dd /dd\n",
    "empty-command": '"" /empty\n',
    "syntax-one-word": "d\n",
    # arguments
    "argument-on-d": "d /da - - - - arg\n",
    "argument-on-R": "R /Ra - - - - arg\n",
    "argument-on-m": "m /ma 0644 - - - arg\n",
    "dash-argument": "d /dash - - - - -\n",
    "w-needs-argument": "w /wn\n",
    "c-needs-argument": "c /cn\n",
    "t-needs-argument": "t /tn\n",
    "a-needs-argument": "a /an\n",
    "h-needs-argument": "h /hn\n",
    "k-needs-argument": "k /kn\n",
    "bad-device": "c /cbad - - - - 4096:1\nb /bbad - - - - 1:2:3\nc /cq - - - - \"1:2\"\nc /cp - - - - +1:2\n",
    "device-bases": "c /c8 - - - - 010:0x10\nc /cw - - - -  1: 2\n",
    "bad-attribute": "h /ha - - - - x\nh /hb - - - - +\nh /hc - - - - =\n",
    "bad-xattr": "t /tx - - - - user.a=b c= =d noeq\n",
    "relative-copy-source": "C /cr - - - - etc\n",
    "missing-copy-source": "C /cm - - - - /does/not/exist\n",
    # paths
    "relative-path": "d relative\n",
    "dot-path": "d ./x\n",
    "var-run": "d /var/run/x\nd /var/run\nd /var/run/\n",
    "unnormalised": "d //a/./b/\nd /a/../b\n",
    "quoted-path": "d \"/with space\"\nd '/single quoted'\nd /mid\"dle q\"uote\n",
    "escaped-path": "d /esc\\x41pe\nd /tab\\tx\nd /oct\\101\nd /uni\\u00e9\nd /big\\U0001F600\nd /sp\\sx\n",
    "bad-escape": "d /bad\\q\n",
    "nul-escape": "d /nul\\x00\nd /nul\\000\nd /nul\\u0000\n",
    "trailing-backslash": "d /tb\\\n",
    "unbalanced-quote": "d \"/open\n",
    "high-octal": "d /o\\400\n",
    "surrogate-escape": "d /s\\ud800\n",
    "big-unicode": "d /u\\U00110000\n",
    # specifiers
    "specifiers": "d /s/%a/%A/%b/%B/%C/%D/%g/%G/%h/%H/%l/%L/%m/%M/%o/%q/%S/%t/%T/%u/%U/%v/%V/%w/%W/%%\n",
    "unknown-specifier": "d /x%z\nd /x%E\n",
    "trailing-percent": "d /pct%\n",
    "specifier-in-argument": "f /fa - - - - %m-%o\nL /la - - - - /%o\nw /wa - - - - %%\n",
    "bad-specifier-in-argument": "f /fz - - - - %z\n",
    "bad-escape-in-argument": "f /fe - - - - \\q\n",
    "specifier-in-base64": "f~ /fb - - - - JW0=\n",
    "too-long-path": "d /" + "x" * 5000 + "\n",
    # mode
    "modes": "d /m1 0\nd /m2 7777\nd /m3 ~0755\nd /m4 :0700\nd /m5 ~:0711\nd /m6 :~0711\nd /m7 ''\n",
    "bad-modes": "d /bm1 0888\nd /bm2 10000\nd /bm3 +755\nd /bm4 0x755\nd /bm5 rwx\nd /bm6 ~\n",
    # users and groups
    "users": "d /u1 - root root\nd /u2 - alice users\nd /u3 - 1000 10\nd /u4 - :bob :wheel\nd /u5 - 4294967294\n",
    "unknown-user": "d /uu - nosuchuser\n",
    "unknown-group": "d /ug - - nosuchgroup\n",
    "bad-numeric-users": "d /n1 - 65535\nd /n2 - 4294967295\nd /n3 - 05\nd /n4 - +5\nd /n5 - - 65535\n",
    # ages
    "ages": "d /a1 - - - 10d\nd /a2 - - - 1h30min\nd /a3 - - - ~1w\nd /a4 - - - am:1d\nd /a5 - - - AM:1d\n"
            "d /a6 - - - 0\nd /a7 - - - infinity\nd /a8 - - - 1.5h\nd /a9 - - - 5\nd /a10 - - - \"1 d\"\n",
    "bad-ages": "d /ba1 - - - 1x\nd /ba2 - - - -1d\nd /ba3 - - - 1.\nd /ba4 - - - q:1d\nd /ba5 - - - :1d\n"
                "d /ba6 - - - 12.34.56\nd /ba7 - - - ab\n",
    "age-tilde-on-r": "r /rt - - - ~1d\n",
    # duplicates
    "duplicates": "d /dup 0755\nd /dup 0700\nd /dup 0755\nz /dup 0700\nw+ /wd - - - - x\nw+ /wd - - - - y\n"
                  "w /wd - - - - y\nf /fd\nf /fd - - - - x\nL /ld - - - - a\nL+ /ld - - - - a\n",
    # comments and blank lines
    "comments": "# comment\n   # indented comment\n\n\t\n; not a comment\n",
}


def _write(tmp_path: Path, body: str) -> Path:
    conf = tmp_path / "case.conf"
    conf.write_bytes((GOOD_BEFORE + body + GOOD_AFTER).encode("utf-8", "surrogateescape"))
    return conf


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_as_reference(name: str, tmp_path: Path, oracles: Path) -> None:
    root = make_root(tmp_path / "root")
    (root / "etc/copysrc").mkdir()
    conf = _write(tmp_path, CASES[name])
    ref, ours, config = compare_parse(oracles / "systemd-tmpfiles-new", root, conf)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    if ref.rc != 1:  # with a hard failure systemd applies nothing
        assert would_paths(ref, root) == our_created_paths(config)
        assert {"/before", "/after"} <= our_created_paths(config)


@pytest.mark.parametrize("data", [
    b"d /a\r\n\rd /b\n\nd /c\n\r\rx\n",  # CR, LF and CRLF line ends count as systemd counts them
    b"d /nul\0x\nd /z\n",  # a NUL ends the line
    b"d /\xff\xfe\nd /z\n",  # bytes that are not UTF-8
    b"d /nonl",  # no final newline
    b"d /long" + b"x" * (1 << 20) + b"\nd /afterlong\n",  # overlong line: the file is abandoned
    b"d /" + b"y" * 4200 + b"\n",  # longer than PATH_MAX after expansion
])
def test_raw_bytes_same_as_reference(data: bytes, tmp_path: Path, oracles: Path) -> None:
    root = make_root(tmp_path / "root")
    conf = tmp_path / "raw.conf"
    conf.write_bytes(data)
    ref, ours, config = compare_parse(oracles / "systemd-tmpfiles-new", root, conf)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    if ref.rc != 1:
        assert would_paths(ref, root) == our_created_paths(config)


@pytest.mark.parametrize(("flag", "option"), [("--boot", "boot"), ("--graceful", "graceful")])
def test_flags_same_as_reference(flag: str, option: str, tmp_path: Path, oracles: Path) -> None:
    root = make_root(tmp_path / "root")
    conf = _write(tmp_path, "d! /bootonly\nd /g1 4755 nosuchuser\nd /g2 - - nosuchgroup\nf /g3 2644 nosuch nosuch\n")
    ref, ours, config = compare_parse(oracles / "systemd-tmpfiles-new", root, conf, extra=(flag,),
                                      boot=option == "boot", graceful=option == "graceful")
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    assert would_paths(ref, root) == our_created_paths(config)


def test_prefixes_same_as_reference(tmp_path: Path, oracles: Path) -> None:
    root = make_root(tmp_path / "root")
    conf = _write(tmp_path, "d /run/x\nd /srv/a - nosuchuser\nd /srv/b\nd /srvx\nd /dev/y\n")
    extra = ("--prefix=/srv", "--prefix=/run", "--exclude-prefix=/srv/a", "-E")
    excluded = ("/srv/a", "/dev", "/proc", "/run", "/sys")
    ref, ours, config = compare_parse(oracles / "systemd-tmpfiles-new", root, conf, extra=extra,
                                      prefixes=("/srv", "/run"), exclude_prefixes=excluded)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    assert would_paths(ref, root) == our_created_paths(config)
