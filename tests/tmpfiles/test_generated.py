"""Generated differential cases: hypothesis builds rule sets and starting trees, and freshroot
must leave the same tree, exit status and messages as the newest systemd-tmpfiles for every
one (tests/tmpfiles/harness.py compares them).

systemd 252 is run too, on a deterministic quarter of the examples (those whose case hashes to
0 modulo CHECK_252_EVERY, so a replayed or shrunk example is checked the same way): where 252
leaves the same tree and exit status as the newest release, freshroot's must match 252's as
well. The test reports how many examples 252 ran on and how many of those it agreed on.

2,000 examples per run (the "tmpfiles-differential" profile; FRESHROOT_HYPOTHESIS_EXAMPLES
overrides it for a quick local run). Names come from a tiny alphabet so rules and trees meet
often: the same path gets several lines, globs match what the tree holds, parents are files.

What the lines cover: every line type (f F w d D v e p L c b C z Z t T h H a A k K r R x X,
with '+' where it exists), the modifiers '-', '!', '=', '~' (base64 arguments), '^' (read from
a credential: $CREDENTIALS_DIRECTORY names a directory both tools read), '$' (with --purge),
'?' (L?; on other types it is the parse error systemd gives), and the specifiers %m %b %H %%
%t %S in paths and arguments (under --root systemd 262 and freshroot both take %m from the
root's machine-id, %b and %H from the running machine, and %t and %S without the root prefix).
Device nodes are made and compared as root; k/K (file capabilities) and h/H (chattr) need a
scratch file system with xattrs and file attributes (ext4, where /tmp is here; not tmpfs).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tmpfiles.harness import (
    BDEV,
    CDEV,
    Case,
    D,
    F,
    L,
    Node,
    P,
    S,
    diff_trees,
    differences,
    rmtree_scratch,
    run_in,
)

settings.register_profile(
    "tmpfiles-differential",
    max_examples=int(os.environ.get("FRESHROOT_HYPOTHESIS_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    derandomize=False,
)
PROFILE = settings.get_profile("tmpfiles-differential")

NAMES = ("a", "b", "c")
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(lambda parts: "/h/" + "/".join(parts))
modes = st.sampled_from([0o755, 0o700, 0o644, 0o600, 0o1777, 0o2750, 0o4755, 0o000])
owners = st.sampled_from([0, 1000, 1001])


@st.composite
def nodes(draw: st.DrawFn) -> Node:
    path = draw(paths)
    kind = draw(st.sampled_from("ddddffffllpcbs"))
    mode, uid, gid = draw(modes), draw(owners), draw(owners)
    match kind:
        case "d":
            return D(path, mode, uid, gid)
        case "f":
            return F(path, draw(st.sampled_from(["", "x", "content\n"])), mode, uid, gid)
        case "l":
            # Symlinks are root's: a user-owned one is a deliberate difference of freshroot's
            # path walk (differences.py, "safe-symlink-owner"), tested on its own.
            return L(path, draw(st.sampled_from(["a", "b", "../a", "c/a", "missing"])), 0, 0)
        case "c":
            return dataclasses.replace(CDEV(path, 1, draw(st.sampled_from([3, 5]))), mode=mode & 0o777)
        case "b":
            return dataclasses.replace(BDEV(path, 7, draw(st.sampled_from([0, 1]))), mode=mode & 0o777)
        case "s":
            return S(path)
        case _:
            return P(path, mode & 0o777, uid, gid)


def _tree(nodes_: list[Node]) -> tuple[Node, ...]:
    """Drop nodes whose parent another node made a non-directory (the materialiser needs it)."""
    kept: dict[str, Node] = {}
    for n in nodes_:
        parent = n.path.rsplit("/", 1)[0]
        blocked = any(p != "/h" and (p in kept and kept[p].kind != "d")
                      for p in _ancestors(parent))
        if n.path in kept or blocked:
            continue
        if n.kind != "d" and any(k.startswith(n.path + "/") for k in kept):
            continue
        kept[n.path] = n
    return (D("/h"), *sorted(kept.values(), key=lambda n: n.path.count("/")), *SOURCE)


# The source of every generated C line lives outside /h: copying a tree into itself makes
# systemd recurse until it runs out of file descriptors (see differences.py).
SOURCE = (D("/s", 0o750, 1000, 1000), F("/s/f", "copied", 0o600), D("/s/d"), L("/s/l", "f"))


def _ancestors(path: str) -> list[str]:
    out = []
    while path and path != "/":
        out.append(path)
        path = path.rsplit("/", 1)[0]
    return out


# The credentials every case can read ('^'): $CREDENTIALS_DIRECTORY holds these files.
CREDENTIALS = {"cred": b"secret\n", "b64cred": b"aGVsbG8K"}
SPECIFIERS = "[%m|%b|%H|%%|%t|%S]"

# Line types (with the modifiers that make them another type) and the arguments they take.
TYPES: dict[str, tuple[str | None, ...]] = {
    "f": ("content", SPECIFIERS), "f+": ("trunc",), "F": ("legacy",), "w": ("written", "%H%%"),
    "w+": ("more",),
    "f~": ("aGVsbG8K", "AAECAw==", "!!"), "w~": ("AAECAw==",),
    "f^": ("cred", "cred", "missing"), "w^": ("cred",), "f^~": ("b64cred",),
    "d": (None,), "D": (None,), "v": (None,), "e": (None,), "p": (None,), "p+": (None,),
    "L": ("a", "%t/a"), "L+": ("../b",), "L?": ("a", "../b", "/h/a", "/s/f", "missing"),
    "c": ("1:3",), "c+": ("1:5",), "b": ("7:0",), "b+": ("7:1",),
    "z": (None,), "Z": (None,), "t": ("user.k=v",), "T": ("user.r=1",),
    # No "=": it clears the extents flag too, and whether ext4 lets a file just written give
    # it up depends on its block allocation, not on the tool.
    "h": ("+d", "-d", "-A"), "H": ("+A",), "r": (None,), "R": (None,), "x": (None,), "X": (None,),
    "C": ("/s", "/s/f"),
    "a": ("u:1000:rwx", "d:u:1001:rwx", "u:1000:rw-,m::r--", "o::---", "u:1000:rwz"), "a+": ("g:100:rX",),
    "A": ("u:1001:rwX,d:g:100:r-x",), "A+": ("g:100:rX",),
    "k": ("cap_net_raw+ep", "cap_chown,cap_kill+ei", "nonsense+ep"), "k+": ("cap_kill+p",), "K": ("cap_setuid+p",),
}
GLOBBY = frozenset("wezZtThHrRxXaAkK")
# Extra modifiers: '=' only where systemd accepts it, '?' is an error except on L.
EXTRAS = ["", "", "", "", "-", "-", "!", "=", "-=", "$", "$", "?"]
PATH_SPECIFIERS = ["%m", "a%%", "%H", "%b", "%t"]


@st.composite
def lines(draw: st.DrawFn) -> str:
    spec = draw(st.sampled_from(sorted(TYPES)))
    letter = spec[0]
    extra = "".join(c for c in draw(st.sampled_from(EXTRAS)) if c not in spec)
    if "=" in extra and letter not in "fdpLcbvC":
        extra = extra.replace("=", "")
    path = draw(paths)
    if letter in GLOBBY and draw(st.booleans()):
        path = path.rsplit("/", 1)[0] + "/" + draw(st.sampled_from(["*", "?", "[ab]", "{a,c}"]))
    elif draw(st.integers(0, 11)) == 0:
        path = path.rsplit("/", 1)[0] + "/" + draw(st.sampled_from(PATH_SPECIFIERS))
    mode = draw(st.sampled_from(["-", "0700", "0644", "~0775", ":0600", "1777", "0"]))
    user = draw(st.sampled_from(["-", "-", "alice", ":bob", "0", "root", "1001"]))
    group = draw(st.sampled_from(["-", "-", "users", ":alice", "0"]))
    if letter == "L":
        user = "-"  # a user-owned symlink is the "safe-symlink-owner" difference, tested on its own
    argument = draw(st.sampled_from(TYPES[spec]))
    tail = f" - {argument}" if argument is not None else ""
    return f"{spec}{extra} {path} {mode} {user} {group}{tail}"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    tree = _tree(draw(st.lists(nodes(), max_size=6)))
    rules = draw(st.lists(lines(), min_size=1, max_size=5))
    if sum(r[0] in "kK" for r in rules) > 1:
        # k+ over capabilities set by another line is a deliberate difference (differences.py,
        # "caps-plus-existing"), tested on its own.
        rules = [r for r in rules if not r.startswith("k+")] or rules[:1]
    if any(r.startswith("L?") and r.rsplit(" ", 1)[-1].startswith("/") for r in rules):
        # The run makes an absolute symlink (L? to /h/a, /s/f): systemd's w lines and globs
        # follow it from the host's / even under --root, freshroot's stay in the root
        # (differences.py: w-follows-inside-root, glob-symlinks-inside-root, each tested on
        # its own). Keep the two apart, and keep systemd away from the host.
        # The same goes for '=' checking the parents of its path (eq-parents-follow-inside-root).
        rules = [r for r in rules if r.startswith("L?") or not (
            r.startswith("w") or "=" in r.split(" ")[0] or any(c in r.split(" ")[1] for c in "*?[{"))]
    args = draw(st.sampled_from([("--create",), ("--create",), ("--remove",), ("--create", "--remove"),
                                 ("--create", "--boot"), ("--create", "--remove", "--boot"), ("--purge",),
                                 ("--create", "--purge"), ("--create", "--dry-run")]))
    if ("--remove" in args and any(r[0] in "rRD" for r in rules)) or (
            "--purge" in args and any("$" in r.split(" ", 1)[0] for r in rules)):
        # r, R and D (--remove) and '$' lines (--purge) walk their starting path with the
        # safe-transition rule, where systemd does not (deliberate differences safe-start-*,
        # tests/tmpfiles/test_symlink_attacks.py): keep the directories root's so the two can
        # be compared.
        tree = tuple(dataclasses.replace(n, uid=0, gid=0) if n.kind == "d" else n for n in tree)
    return Case("generated", "\n".join(rules) + "\n", tree, args)


CHECK_252_EVERY = 4


def checks_252(case: Case) -> bool:
    """Whether systemd 252 runs on ``case``: a stable hash, so replaying an example (or
    shrinking it) decides the same way."""
    return zlib.crc32(repr((case.config, case.args, case.tree)).encode()) % CHECK_252_EVERY == 0


@pytest.mark.oracle
@pytest.mark.root
@pytest.mark.slow
def test_generated_cases_match_systemd(oracles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name, data in CREDENTIALS.items():
        (credentials / name).write_bytes(data)
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    counts: Counter[str] = Counter()

    @settings(PROFILE)
    @given(case=cases())
    def check(case: Case) -> None:
        case = dataclasses.replace(case, env=env)
        scratch = Path(tempfile.mkdtemp(prefix="fr-gen-"))
        try:
            new = run_in(case, scratch, "systemd", oracles / "systemd-tmpfiles-new")
            ours = run_in(case, scratch, "freshroot", None)
            problems = differences(case, new, ours, scratch)
            counts["examples"] += 1
            if not problems and checks_252(case):
                old = run_in(case, scratch, "systemd-252", oracles / "systemd-tmpfiles-252")
                counts["252 run"] += 1
                if old.status == new.status and not diff_trees(old.tree, new.tree, ("252", "new")):
                    counts["252 agreed"] += 1
                    problems = differences(case, old, ours, scratch, labels=("systemd-252", "freshroot"),
                                           compare_messages=False)
        finally:
            rmtree_scratch(scratch)
        assert not problems, "\n".join(problems)

    check()
    with capsys.disabled():
        print(f"\n{counts['examples']} generated cases matched systemd 262; systemd 252 ran on "
              f"{counts['252 run']}, agreed with 262 on {counts['252 agreed']}, and freshroot matched "
              "252 on all of those")
    if counts["252 run"] >= 20:
        assert counts["252 agreed"] > 0, "252 never agreed with 262: is the 252 build broken?"


