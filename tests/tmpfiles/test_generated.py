"""Generated differential cases: hypothesis builds rule sets and starting trees, and freshroot
must leave the same tree and exit status as the newest systemd-tmpfiles for every one.

2,000 examples per run (the "tmpfiles-differential" profile; FRESHROOT_HYPOTHESIS_EXAMPLES
overrides it for a quick local run). Names come from a tiny alphabet so rules and trees meet
often: the same path gets several lines, globs match what the tree holds, parents are files.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tmpfiles.harness import Case, D, F, L, Node, P, compare

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
    kind = draw(st.sampled_from("dddffflp"))
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


TYPES = {
    "f": "content", "f+": "trunc", "w": "written", "w+": "more", "d": None, "D": None, "v": None, "e": None,
    "p": None, "p+": None, "L": "a", "L+": "../b", "c": "1:3", "c+": "1:5", "z": None, "Z": None,
    "t": "user.k=v", "T": "user.r=1", "h": "+d", "H": "+A", "r": None, "R": None, "x": None, "X": None,
    "C": "/s", "a": "u:1000:rwx", "A+": "g:100:rX",
}
GLOBBY = frozenset("wezZtThHrRxXaA")


@st.composite
def lines(draw: st.DrawFn) -> str:
    spec = draw(st.sampled_from(sorted(TYPES)))
    letter = spec[0]
    extra = draw(st.sampled_from(["", "", "", "-", "!", "=", "-="]))
    if extra == "=" and letter not in "fdpLcbvC":
        extra = ""
    path = draw(paths)
    if letter in GLOBBY and draw(st.booleans()):
        path = path.rsplit("/", 1)[0] + "/" + draw(st.sampled_from(["*", "?", "[ab]", "{a,c}"]))
    mode = draw(st.sampled_from(["-", "0700", "0644", "~0775", ":0600", "1777", "0"]))
    user = draw(st.sampled_from(["-", "-", "alice", ":bob", "0", "root", "1001"]))
    group = draw(st.sampled_from(["-", "-", "users", ":alice", "0"]))
    if letter == "L":
        user = "-"  # a user-owned symlink is the "safe-symlink-owner" difference, tested on its own
    argument = TYPES[spec]
    tail = f" - {argument}" if argument is not None else ""
    return f"{spec}{extra} {path} {mode} {user} {group}{tail}"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    tree = _tree(draw(st.lists(nodes(), max_size=6)))
    rules = draw(st.lists(lines(), min_size=1, max_size=5))
    args = draw(st.sampled_from([("--create",), ("--create",), ("--remove",), ("--create", "--remove"),
                                 ("--create", "--boot"), ("--create", "--remove", "--boot")]))
    if "--remove" in args and any(r[0] in "rRD" for r in rules):
        # r, R and D walk their starting path with the safe-transition rule, where systemd
        # does not (issue 4's deliberate difference, tests/tmpfiles/test_symlink_attacks.py):
        # keep the directories root's so the two can be compared.
        tree = tuple(dataclasses.replace(n, uid=0, gid=0) if n.kind == "d" else n for n in tree)
    return Case("generated", "\n".join(rules) + "\n", tree, args)


@pytest.mark.oracle
@pytest.mark.root
@pytest.mark.slow
@settings(PROFILE)
@given(case=cases())
def test_generated_cases_match_newest_systemd(case: Case, oracles: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="fr-gen-"))
    try:
        problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    finally:
        _rmtree(scratch)
    assert not problems, "\n".join(problems)


def _rmtree(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)
    # chattr +A/+d flags do not stop removal; immutable/append flags are never generated.
    shutil.rmtree(path, ignore_errors=True)
