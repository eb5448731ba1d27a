"""The hand-written differential cases: every line type against interesting starting states,
with modifiers, modes, owners, specifiers and command-line options.

Symlinks in starting trees are relative: systemd resolves some symlinks (the file 'w' writes
to, intermediate directories of a glob) against the host's root even under --root, and a
test must never reach outside its scratch directory.
"""

from __future__ import annotations

import struct

from tests.tmpfiles.harness import CDEV, Case, D, F, L, Node, P, S

# Starting states for the entry /t/x (the parent /t always exists unless said otherwise).
STATES: dict[str, tuple[Node, ...]] = {
    "absent": (D("/t"),),
    "file": (D("/t"), F("/t/x", "old content\n", 0o600, 1000, 1000)),
    "emptyfile": (D("/t"), F("/t/x", "", 0o640, 1001, 100)),
    "dir": (D("/t"), D("/t/x", 0o700, 1000, 1000)),
    "fulldir": (D("/t"), D("/t/x", 0o750), F("/t/x/a", "a"), D("/t/x/sub"), F("/t/x/sub/b", "b", 0o600),
                L("/t/x/ln", "a")),
    "link-file": (D("/t"), F("/t/target", "target\n", 0o644, 1001, 1001), L("/t/x", "target")),
    "link-dir": (D("/t"), D("/t/tdir", 0o711), F("/t/tdir/in", "in"), L("/t/x", "tdir")),
    "dangling": (D("/t"), L("/t/x", "missing")),
    "fifo": (D("/t"), P("/t/x", 0o600)),
    "socket": (D("/t"), S("/t/x")),
    "chardev": (D("/t"), CDEV("/t/x", 1, 3)),
    "no-parent": (),
    "parent-file": (F("/t", "i am a file"),),
    "parent-link": (D("/real", 0o755), L("/t", "real")),
}

# Lines for /t/x: (spec, mode, user, group, age, argument).
LINES: dict[str, str] = {
    "f": "f /t/x - - - - hello\\n",
    "f-noarg": "f /t/x",
    "f-mode": "f /t/x 0600 alice bob - hello",
    "f+": "f+ /t/x 0640 - - - new\\n",
    "f+noarg": "f+ /t/x",
    "F": "F /t/x - - - - legacy",
    "f=": "f= /t/x 0644 - - - replaced",
    "w": "w /t/x - - - - written",
    "w+": "w+ /t/x - - - - appended\\n",
    "w-mode": "w /t/x 0600 bob - - w",
    "d": "d /t/x 0751 alice users -",
    "d-default": "d /t/x",
    "d=": "d= /t/x 0700",
    "D": "D /t/x 0755",
    "v": "v /t/x 0700",
    "q": "q /t/x",
    "Q": "Q /t/x 0750 bob",
    "e": "e /t/x 0700 alice - -",
    "p": "p /t/x 0640 alice -",
    "p+": "p+ /t/x 0600",
    "p=": "p= /t/x",
    "L": "L /t/x - - - - ../elsewhere",
    "L+": "L+ /t/x - - - - target",
    "L=": "L= /t/x - - - - target",
    "L-owner": "L /t/x - alice alice - target",
    "c": "c /t/x 0620 - - - 1:5",
    "c+": "c+ /t/x 0666 - - - 1:3",
    "b": "b /t/x 0600 - - - 7:1",
    "b+": "b+ /t/x 0600 - - - 7:1",
    "z": "z /t/x 0700 bob users",
    "z-mask": "z /t/x ~0777 - -",
    "Z": "Z /t/x 0750 alice -",
    "t": "t /t/x - - - - user.test=value",
    "T": "T /t/x - - - - user.deep=1",
    "h": "h /t/x - - - - +d",
    "H": "H /t/x - - - - +d",
    "r": "r /t/x",
    "R": "R /t/x",
    "x": "x /t/x",
    "C": "C /t/x - - - - /src",
    "C+": "C+ /t/x - - - - /src",
    "d-": "d- /t/x 0700",
    "f-": "f- /t/x 0600",
}

SOURCE_TREE = (D("/src", 0o750, 1000, 1000), F("/src/one", "1", 0o600, 1001, 1001), D("/src/sub"),
               F("/src/sub/two", "22"), L("/src/lnk", "one"))

# user::rw-, user:1000:rw-, group::r--, mask::rw-, other::r--
ACL_U1000_RW = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in (
    (0x01, 6, 0xFFFFFFFF), (0x02, 6, 1000), (0x04, 4, 0xFFFFFFFF), (0x10, 6, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)))

# Lines that only act with --remove (the rest with --create).
REMOVE_LINES = frozenset({"r", "R", "D"})


def type_state_cases() -> list[Case]:
    out = []
    for line_name, line in LINES.items():
        for state_name, tree in STATES.items():
            if state_name in ("socket", "chardev", "parent-file", "parent-link", "emptyfile", "no-parent") \
                    and line_name not in ("f", "f+", "d", "d=", "p", "p+", "L", "L+", "w", "z", "r", "R", "c+",
                                          "f=", "C", "e", "t", "h", "D"):
                continue
            full = tree + SOURCE_TREE if line_name.startswith("C") else tree
            args: tuple[str, ...] = ("--create", "--remove") if line_name in REMOVE_LINES else ("--create",)
            out.append(Case(f"{line_name}@{state_name}", line + "\n", full, args))
    return out


def modifier_cases() -> list[Case]:
    cases = []
    base = (D("/t"),)
    for boot in (False, True):
        args = ("--create", "--boot") if boot else ("--create",)
        tag = "boot" if boot else "noboot"
        cases += [
            Case(f"bang-d-{tag}", "d! /t/b 0700\nd /t/n 0700\n", base, args),
            Case(f"bang-f-{tag}", "f! /t/b - - - - x\n", base, args),
            Case(f"bang-L-{tag}", "L!+ /t/b - - - - x\n", (*base, F("/t/b")), args),
            Case(f"bang-r-{tag}", "r! /t/old\n", (*base, F("/t/old")), (*args, "--remove")),
            Case(f"bang-minus-{tag}", "d!- /t/b\n", base, args),
        ]
    cases += [
        Case("minus-d-over-file", "d- /t/x 0700\n", (D("/t"), F("/t/x"))),
        Case("minus-f-in-file-parent", "f- /t/p/x\n", (D("/t"), F("/t/p"))),
        Case("minus-w-dir", "w- /t/x - - - - data\n", (D("/t"), D("/t/x"))),
        Case("no-minus-w-dir", "w /t/x - - - - data\n", (D("/t"), D("/t/x"))),
        Case("minus-c-exists", "c- /t/x - - - 1:3\n", (D("/t"), F("/t/x"))),
        Case("eq-parents", "f= /t/a/b/c - - - - deep\n", (D("/t"), F("/t/a", "blocker"))),
        Case("eq-parents-dangling", "d= /t/a/b\n", (D("/t"), L("/t/a", "nowhere"))),
        # The message names the followed type (a file), the symlink itself is what goes.
        Case("eq-parents-link-to-file", "f+= /t/b/c/a - - - - trunc\n",
             (D("/t"), F("/t/a"), D("/t/b"), L("/t/b/c", "../a"))),
        Case("eq-parents-link-ok", "d= /t/a/b 0700\n", (D("/t"), D("/t/real"), L("/t/a", "real"))),
        Case("eq-parents-fifo", "d= /t/a/b 0700\n", (D("/t"), P("/t/a"))),
        Case("eq-unsafe-parent", "L= /t/u/b/x - - - - target\n",
             (D("/t"), D("/t/u", 0o755, 1000, 1000), D("/t/u/b"), D("/t/u/b/x"))),
        Case("eq-last-dir-to-file", "f= /t/x - - - - content\n", (D("/t"), D("/t/x"), F("/t/x/in"))),
        Case("eq-last-link-to-dir", "d= /t/x\n", (D("/t"), D("/t/o"), L("/t/x", "o"))),
        Case("eq-last-same-type", "p= /t/x 0600\n", (D("/t"), P("/t/x", 0o644))),
        Case("eq-C", "C= /t/x - - - - /src\n", (D("/t"), F("/t/x"), *SOURCE_TREE)),
        Case("plus-L-over-dir", "L+ /t/x - - - - elsewhere\n", (D("/t"), D("/t/x"), F("/t/x/f"))),
        Case("plus-p-over-dir", "p+ /t/x 0600\n", (D("/t"), D("/t/x"), D("/t/x/s"))),
        Case("plus-L-same", "L+ /t/x - - - - same\n", (D("/t"), L("/t/x", "same"))),
        Case("L-question-missing", "L? /t/x - - - - missing\n", (D("/t"),), v252=False),
        Case("L-question-present", "L? /t/x - - - - there\n", (D("/t"), F("/t/there")), v252=False),
        Case("L-question-dangling", "L? /t/x - - - - l\n", (D("/t"), L("/t/l", "nowhere")), v252=False),
        Case("L-question-absolute", "L? /t/x - - - - /t/there\nL? /t/y - - - - there\n",
             (D("/t"), F("/t/there")), v252=False),
        Case("L-question-unsafe", "L? /t/x - - - - /u/f\n", (D("/t"), D("/u", 0o750, 1000, 1000), F("/u/f")),
             v252=False),
        Case("L-question-parent-file", "L? /t/f/x - - - - missing\n", (D("/t"), F("/t/f")), v252=False),
        Case("L-question-dry-run", "L? /t/x - - - - missing\nL? /t/y - - - - there\n",
             (D("/t"), F("/t/there")), ("--create", "--dry-run"), v252=False),
        Case("eq-dry-run-missing-parent", "L= /t/a/b - - - - x\nf+-= /t/c/d - - - - y\n", (D("/t"),),
             ("--create", "--dry-run")),
        Case("eq-dry-run-parent-not-dir", "C= /t/a/b - - - - /src/one\nd= /t/p/q\n",
             (D("/t"), F("/t/a"), P("/t/p"), *SOURCE_TREE), ("--create", "--dry-run")),
        Case("purge-below-file", "d$ /t/f/x\nf$ /t/f/y\nw$ /t/f/z - - - - glob\n", (D("/t"), F("/t/f")),
             ("--purge",)),
        Case("L-target-escaped-utf8", "L /t/x - - 100 - \\xdd\\xbd\nL /t/y - - 100 - \\xdd\n", (D("/t"),)),
        Case("L-default-target", "L /t/x\n", (D("/t"),)),
        Case("C-default-source", "C /t/x\n", (D("/t"), D("/usr/share/factory/t/x"),
                                               F("/usr/share/factory/t/x/f", "factory"))),
        Case("C-missing-source", "C /t/x - - - - /nope\n", (D("/t"),)),
        Case("C-file", "C /t/x 0600 bob - - /src/one\n", (D("/t"), *SOURCE_TREE)),
        Case("C-file-exists", "C /t/x 0600 - - - /src/one\n", (D("/t"), F("/t/x", "keep"), *SOURCE_TREE)),
        Case("C-into-empty", "C /t/x - - - - /src\n", (D("/t"), D("/t/x", 0o700), *SOURCE_TREE)),
        Case("C-owner", "C /t/x 0700 alice bob - /src\n", (D("/t"), *SOURCE_TREE)),
        Case("C-plus-merge", "C+ /t/x - - - - /src\n", (D("/t"), D("/t/x"), F("/t/x/one", "mine"), *SOURCE_TREE)),
        Case("C-xattr", "C /t/x - - - - /srcx\n", (D("/t"), F("/srcx", "x", xattrs=(("user.a", b"1"),)))),
        Case("tilde-f-base64", "f~ /t/x - - - - aGVsbG8gd29ybGQK\n", (D("/t"),)),
        Case("tilde-w-base64", "w~ /t/x - - - - AAECAw==\n", (D("/t"), F("/t/x", "zzzzzzzz"))),
        Case("setgid-parent-d", "d /t/sg/new\nd /t/sg/mode 0700\nd /t/sg/p/q\nf /t/sg/f\n",
             (D("/t"), D("/t/sg", 0o2775, 0, 100))),
        Case("caret-missing-cred", "f^ /t/x - - - - mycred\n", (D("/t"),)),
    ]
    return cases


def mode_owner_cases() -> list[Case]:
    out = []
    base = (D("/t"), F("/t/f", "c", 0o640, 1000, 1000), D("/t/d", 0o711, 1001, 100))
    modes = ["0700", "~0755", ":0600", "~:0777", "1777", "2755", "4755", "0", "07777", "-"]
    owners = [("-", "-"), ("alice", "-"), (":bob", ":users"), ("0", "0"), ("root", "nogroup"),
              ("1000", "1001"), ("nobody", "nogroup"), (":root", "-")]
    for m in modes:
        out.append(Case(f"z-mode-{m}", f"z /t/f {m}\nz /t/d {m}\n", base))
        out.append(Case(f"d-new-mode-{m}", f"d /t/n {m}\n", base))
        out.append(Case(f"f-existing-mode-{m}", f"f /t/f {m}\n", base))
    for u, g in owners:
        tag = f"{u}-{g}".replace(":", "c")
        out.append(Case(f"z-owner-{tag}", f"z /t/f 0644 {u} {g}\nz /t/d - {u} {g}\n", base))
        out.append(Case(f"d-new-owner-{tag}", f"d /t/n 2770 {u} {g}\n", base))
        out.append(Case(f"d-existing-owner-{tag}", f"d /t/d 0700 {u} {g}\n", base))
        out.append(Case(f"f-existing-owner-{tag}", f"f /t/f 4755 {u} {g}\n", base))
    out += [
        Case("unknown-user", "d /t/a 0700 nosuchuser\nd /t/b 0700\n", base),
        Case("unknown-group-graceful", "d /t/a 2700 - nosuchgroup\nd /t/b\n", base, ("--create", "--graceful")),
        Case("unknown-user-graceful", "f /t/a 4755 nosuchuser\n", base, ("--create", "--graceful")),
        Case("bad-mode", "d /t/a 0999\nd /t/b\n", base),
        Case("bad-type", "Y /t/a\nd /t/b\n", base),
        Case("relative-path", "d t/a\nd /t/b\n", base),
        Case("bad-age", "d /t/a - - - 5x\nd /t/b\n", base),
        Case("duplicate-conflict", "d /t/a 0700\nd /t/a 0755\n", base),
        Case("duplicate-same", "d /t/a 0700\nd /t/a 0700\n", base),
        Case("w-plus-twice", "w+ /t/f - - - - one\nw+ /t/f - - - - two\n", base),
        Case("z-then-d", "z /t/a 0700\nd /t/a 0755\n", base),
        Case("d-and-z-same-path", "d /t/a 0700 alice\nz /t/a 0755\n", base),
        Case("f-and-w", "f /t/a 0600 - - - first\nw /t/a - - - - second\n", base),
        Case("e-and-d", "d /t/d 0700\ne /t/d 0750\n", base),
        # A new owner changes how later walks through the directory are judged (SAFE): a
        # root directory below a user's is an unsafe step, whether the owner came with the
        # directory's own line (new) or with a later z line (existing), and a directory
        # given back to root makes the step safe again.
        Case("owner-new-dir-then-walk", "d /t/u 0755 alice\nd /t/u/r 0755 root\nf /t/u/r/f - - - - x\n"
             "d /t/u/a 0755 alice\nf /t/u/a/f - - - - y\n", base),
        Case("owner-z-then-walk", "d /t/e/r 0755\nf /t/e/r/one - - - - 1\nz /t/e 0755 alice\n"
             "f /t/e/r/two - - - - 2\n", base),
        Case("owner-back-to-root", "z /t/d 0755 root root\nd /t/d/r 0755\nf /t/d/r/f - - - - x\n", base),
    ]
    return out


def glob_cases() -> list[Case]:
    tree = (D("/g"), F("/g/a.conf", "a"), F("/g/b.conf", "b"), F("/g/.hidden.conf", "h"), D("/g/sub"),
            F("/g/sub/c.conf", "c"), D("/g/sub2"), F("/g/sub2/c.conf", "c2"), F("/g/x[1]", "br"),
            L("/g/lnk", "a.conf"), D("/g/dl"), F("/g/dl/in"))
    globs = {
        "star": "/g/*.conf", "question": "/g/?.conf", "class": "/g/[ab].conf", "negclass": "/g/[!a].conf",
        "dirstar": "/g/*/c.conf", "brace": "/g/{a,b}.conf", "nomatch": "/g/*.none", "all": "/g/*",
        "dotstar": "/g/.*.conf", "escaped": "/g/x\\[1\\]", "nested-brace": "/g/{sub,sub2}/{c,d}.conf",
        "plain": "/g/a.conf",
    }
    out = []
    for name, pattern in globs.items():
        out.append(Case(f"glob-z-{name}", f"z {pattern} 0600 bob\n", tree))
        out.append(Case(f"glob-w-{name}", f"w {pattern} - - - - W\n", tree))
        out.append(Case(f"glob-r-{name}", f"r {pattern}\n", tree, ("--remove",)))
        out.append(Case(f"glob-t-{name}", f"t {pattern} - - - - user.g=1\n", tree))
    out += [
        Case("glob-R-dirs", "R /g/sub*\n", tree, ("--remove",)),
        Case("glob-Z", "Z /g/s* 0700 alice\n", tree),
        Case("glob-e", "e /g/s* 0700\n", tree),
        Case("glob-x-protects", "R /g\nx /g/sub\n", tree, ("--remove",)),
        Case("glob-x-glob-protects", "R /g\nx /g/*.conf\n", tree, ("--remove",)),
        Case("glob-X-protects", "D /g\nX /g/sub2\n", tree, ("--remove",)),
        Case("glob-h", "h /g/*.conf - - - - +d\n", tree),
        Case("glob-H", "H /g/sub - - - - +A\n", tree),
        Case("glob-T", "T /g/sub - - - - user.r=yes\n", tree),
        Case("glob-order", "z /g/* 0700\nd /g/new 0755\n", tree),
        Case("glob-through-dir-link", "h /g/dirlink/* - - - - +d\nz /g/dirlink/* 0600\n",
             (*tree, L("/g/dirlink", "sub"))),
        Case("glob-below-dir-link", "z /g/dirlink/c.conf 0600\nz /g/*/c.conf 0640 bob\n",
             (*tree, L("/g/dirlink", "sub"))),
        Case("glob-self-loop", "h /g/loop/* - - - - +d\n", (*tree, L("/g/loop", "../g"))),
    ]
    # glibc's reading of a backslash (an escape, also in a name without other magic; one at
    # the end matches nothing), of an unclosed '[' (a literal) and of a cut-off range.
    odd = (D("/g"), F("/g/ab"), F("/g/a\\b"), F("/g/[0-"), F("/g/[ab"), F("/g/x\\"), F("/g/x"), D("/g/dir"),
           F("/g/dir/f"), D("/g/d\\ir"), F("/g/d\\ir/f"))
    out += [
        Case(f"glob-odd-{name}", f"z {pattern} 0600\n", odd) for name, pattern in {
            "backslash": "/g/a\\\\b", "cut-range": "/g/[0-", "unclosed": "/g/[ab", "trailing-backslash": "/g/x\\\\",
            "dir-backslash": "/g/d\\\\ir/f", "star-unclosed": "/g/*/[ab", "star-dir-backslash": "/g/*\\\\r/f",
            "class": "/g/[[:alpha:]]b", "escaped-bracket": "/g/\\\\[ab",
        }.items()
    ]
    out.append(Case("glob-odd-remove", "r /g/[0-\nr /g/x\\\\\nR /g/d\\\\ir\n", odd, ("--remove",)))
    return out


def remove_cases() -> list[Case]:
    tree = (D("/r"), D("/r/d"), F("/r/d/f1"), D("/r/d/s"), F("/r/d/s/f2"), F("/r/file"), D("/r/empty"),
            L("/r/link", "d"), F("/r/d/sticky", mode=0o1644), CDEV("/r/d/null"), P("/r/d/fifo"),
            S("/r/d/sock"))
    return [
        Case("r-file", "r /r/file\n", tree, ("--remove",)),
        Case("r-empty-dir", "r /r/empty\n", tree, ("--remove",)),
        Case("r-full-dir", "r /r/d\n", tree, ("--remove",)),
        Case("r-link", "r /r/link\n", tree, ("--remove",)),
        Case("r-missing", "r /r/none\n", tree, ("--remove",)),
        Case("R-dir", "R /r/d\n", tree, ("--remove",)),
        Case("R-file", "R /r/file\n", tree, ("--remove",)),
        Case("R-missing", "R /r/none\n", tree, ("--remove",)),
        Case("D-remove", "D /r/d 0700\n", tree, ("--remove",)),
        Case("D-create-remove", "D /r/d 0700\n", tree, ("--create", "--remove")),
        Case("D-create-only", "D /r/d 0700\n", tree, ("--create",)),
        Case("D-boot", "D! /r/d\n", tree, ("--remove", "--boot")),
        Case("R-keeps-own-lines", "R /r/d\nf /r/d/f1\n", tree, ("--remove",)),
        Case("R-then-create", "R /r/d\nd /r/d/s 0700\n", tree, ("--remove", "--create")),
        Case("remove-create-order", "r /r/file\nf /r/file 0600 - - - again\n", tree, ("--create", "--remove")),
        Case("R-children-first", "R /r\nR /r/d\n", tree, ("--remove",)),
        Case("remove-only-ignores-create", "d /r/new\nf /r/new2\n", tree, ("--remove",)),
        Case("R-dry-run", "R /r/d\n", tree, ("--remove", "--dry-run")),
        Case("create-dry-run", "d /r/new 0700\nf /r/f - - - - x\nL /r/l - - - - x\nz /r/d 0700\n", tree,
             ("--create", "--dry-run")),
        Case("R-link-to-dir", "R /r/link\n", tree, ("--remove",)),
        # A wildcard-free glob line whose path runs into a loop of symlinks: glob(3) matches
        # nothing, which is no error.
        *(Case(f"glob-line-through-symlink-loop-{op.strip('-')}", "w+$ /r/c/a - - - - more\nr /r/c/b\n"
               "R /r/c/d\ne /r/c/e - - - 1s\n", (D("/r"), L("/r/c", "c/a")), (op,))
          for op in ("--purge", "--remove", "--clean")),
    ]


def option_cases() -> list[Case]:
    lines = "d /a/one\nd /b/two\nd /a/b/three\nd /run/x\nd /dev/y\nf /proc-not/z\n"
    base = (D("/a"), D("/b"))
    opts = {
        "prefix-a": ("--prefix=/a",), "prefix-two": ("--prefix=/a/b", "--prefix=/b"),
        "exclude-a": ("--exclude-prefix=/a",), "exclude-ab": ("--exclude-prefix=/a/b",),
        "E": ("-E",), "prefix-exclude": ("--prefix=/a", "--exclude-prefix=/a/b"),
        "prefix-slash": ("--prefix=/a/",), "prefix-nomatch": ("--prefix=/zzz",),
    }
    return [Case(f"opt-{name}", lines, base, ("--create", *o)) for name, o in opts.items()]


def specifier_cases() -> list[Case]:
    specs = ["%m", "%o", "%w", "%W", "%B", "%M", "%A", "%a", "%v", "%%", "%T", "%V", "%S", "%C",
             "%L", "%t", "%u", "%U", "%g", "%G", "%h", "%H", "%l"]
    out = []
    for s in specs:
        tag = s.replace("%", "pct")
        out.append(Case(f"spec-path-{tag}", f"d /s/{s}x 0700\n", (D("/s"),)))
        out.append(Case(f"spec-arg-{tag}", f"f /s/f - - - - [{s}]\n", (D("/s"),)))
    out.append(Case("spec-bad", "d /s/%y\nd /s/ok\n", (D("/s"),)))
    out.append(Case("spec-L-arg", "L /s/l - - - - %t/target\n", (D("/s"),)))
    return out


def escape_cases() -> list[Case]:
    return [
        Case("quoted-path", 'd "/q/with space" 0700\n', (D("/q"),)),
        Case("escaped-arg", "f /q/f - - - - a\\tb\\x41\\n\n", (D("/q"),)),
        Case("quoted-arg", 'f /q/f - - - - "quoted words"\n', (D("/q"),)),
        Case("trailing-space-arg", "f /q/f - - - - two  spaces\n", (D("/q"),)),
        Case("comment-lines", "# comment\n\n   \nd /q/a\n", (D("/q"),)),
        Case("var-run", "d /var/run/thing 0700\n", (D("/run"), D("/var"), L("/var/run", "../run"))),
        Case("path-dotdot", "d /q/a/../b 0700\n", (D("/q"),)),
        Case("path-double-slash", "d //q//c/ 0700\n", (D("/q"),)),
        Case("attr-equals", "h /q - - - - =d\n", (D("/q"),)),
        Case("attr-minus", "h /q/f - - - - -d\n", (D("/q"), F("/q/f", flags="d"))),
        Case("attr-bad", "h /q - - - - +Y\nd /q/ok\n", (D("/q"),)),
        Case("attr-on-fifo", "h /q/p - - - - +d\n", (D("/q"), P("/q/p"))),
        Case("xattr-multiple", 't /q - - - - user.a=1 "user.b=two words"\n', (D("/q"),)),
        Case("xattr-malformed", "t /q - - - - user.a\n", (D("/q"),)),
        Case("xattr-on-link", "t /q/l - - - - user.a=1\n", (D("/q"), L("/q/l", "x"))),
        Case("dev-bad", "c /q/c - - - - nonsense\nd /q/ok\n", (D("/q"),)),
        Case("w-no-arg", "w /q/f\nd /q/ok\n", (D("/q"), F("/q/f"))),
        Case("age-on-d", "d /q/a 0700 - - 10d\n", (D("/q"),)),
        Case("age-by", "d /q/a 0700 - - ab:1h\n", (D("/q"),)),
    ]


def acl_cap_cases() -> list[Case]:
    """ACLs with numeric ids and root (systemd resolves names with the host's NSS, even under
    --root; see differences.py) and file capabilities."""
    tree = (D("/a", 0o750), F("/a/f", "f", 0o640), F("/a/x", "x", 0o750), D("/a/d", 0o755), F("/a/d/in", "i"),
            L("/a/l", "f"), F("/a/acl", "a", 0o644,
                               xattrs=(("system.posix_acl_access", ACL_U1000_RW),)))
    acls = {
        "user": "u:1000:rwx", "group": "g:100:r-x", "mask": "u:1000:rwx,m::r--", "base": "u::rwx,g::---,o::---",
        "default": "d:u:1001:rwx", "both": "u:1000:rw-,d:g:100:r-x", "X": "u:1000:rwX", "X-group": "g:1001:rX",
        "other": "o::---", "root": "u:root:rwx", "bad": "u:1000:rwz", "four-fields": "x:u:1000:rwx",
        "nameless-mask": "m::rwx", "multi": "u:1000:r--,u:1001:-w-,g:100:--x,g:1000:rwx",
    }
    out = []
    for name, text in acls.items():
        for plus in ("", "+"):
            for path in ("/a/f", "/a/x", "/a/d", "/a/acl"):
                tag = f"{name}{'-plus' if plus else ''}-{path.rsplit('/', 1)[1]}"
                out.append(Case(f"acl-a-{tag}", f"a{plus} {path} - - - - {text}\n", tree))
        out.append(Case(f"acl-A-{name}", f"A /a - - - - {text}\n", tree))
        out.append(Case(f"acl-A-plus-{name}", f"A+ /a - - - - {text}\n", tree))
    out += [
        Case("acl-on-link", "a /a/l - - - - u:1000:rwx\n", tree),
        Case("acl-glob", "a /a/* - - - - g:100:rwx\n", tree),
        Case("acl-missing", "a /a/none - - - - u:1000:rwx\n", tree),
        Case("acl-with-z", "z /a/f 0600\na /a/f - - - - u:1000:r--\n", tree),
    ]
    caps = {"raw": "cap_net_raw+ep", "bind": "cap_net_bind_service=ep", "multi": "cap_chown,cap_kill+ei",
            "all": "all=p", "minus": "all=ep cap_sys_admin-e", "bad": "cap_nonsense+ep", "num": "cap_12+p",
            "inherit": "cap_setuid+i"}
    for name, text in caps.items():
        out.append(Case(f"cap-k-{name}", f"k /a/x - - - - {text}\n", tree, v252=False))
        out.append(Case(f"cap-K-{name}", f"K /a - - - - {text}\n", tree, v252=False))
    # A capability text that does not parse: k does not even open its path (so an unsafe
    # transition on the way is no failure), K still walks and fails there (found by the
    # generated cases).
    unsafe = (D("/h"), D("/h/u", 0o755, 1000, 0), D("/h/u/b"))
    out += [Case("cap-k-bad-unsafe-path", "k /h/u/b - - - - nonsense+ep\n", unsafe, v252=False),
            Case("cap-K-bad-unsafe-path", "K /h/u/b - - - - nonsense+ep\n", unsafe, v252=False),
            Case("cap-k-good-unsafe-path", "k /h/u/b - - - - cap_chown+ep\n", unsafe, v252=False)]
    return out


def all_cases() -> list[Case]:
    return (type_state_cases() + modifier_cases() + mode_owner_cases() + glob_cases() + remove_cases()
            + option_cases() + specifier_cases() + escape_cases() + acl_cap_cases())
