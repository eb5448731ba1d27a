"""Rendered lines parse back to the same values, in freshroot and in systemd-tmpfiles 262.

Generated rules of every line type render accepts (f F w d D e v q Q p L c b C x X r R z Z t T
a A h H k K, with '+', '~' for binary content, and the modifiers '-', '!', '=', '$', '?' where
the type takes them), with modes (octal, '~' masked, ':' only when created), users and groups
(names, numbers, ':'), ages (timespans, '~', age-by letters, microseconds) and arguments (paths
and contents with spaces, quotes, backslashes, '%', control characters, non-ASCII, raw bytes)
are rendered, then:

- freshroot's parser gives back exactly the rule's values, field by field;
- systemd-tmpfiles 262 and freshroot, applying the text for real into scratch roots (with the
  path there already for the lines that act on existing paths), leave the same tree, exit
  status and messages (tests/tmpfiles/harness.py), systemd without complaint; for the lines that
  create a node, the node has the rule's mode, owner, content, link target or device number.

NixOS-shaped settings (``systemd.tmpfiles.settings``: file -> path -> type -> mode, user, group,
age, argument) are rendered as NixOS writes them; freshroot's parse of the files is checked
item by item against the settings, and systemd 262 and freshroot are compared on them: the
same --dry-run --create output line by line (the "Would ..." lines included), and the same
tree, exit status and messages applied for real.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshroot.tmpfiles import fields
from freshroot.tmpfiles.load import LoadOptions, load
from freshroot.tmpfiles.messages import Level, Message
from freshroot.tmpfiles.model import AGE_BY_DEFAULT_DIR, USEC_INFINITY, Age, AgeBy, Item, ItemType
from freshroot.tmpfiles.render import Rule, render_rule, render_settings, settings_rules
from tests.tmpfiles.harness import Case, D, F, Node, Outcome, differences, rmtree_scratch, run_in
from tests.tmpfiles.syntax_oracle import ETC_PASSWD, GROUP, MACHINE_ID, OS_RELEASE, make_root

USERS = {"root": 0, "daemon": 1, "alice": 1000, "bob": 1001}
GROUPS = {"root": 0, "daemon": 1, "users": 100, "alice": 1000, "wheel": 10}
# The harness's roots get the same accounts as syntax_oracle's make_root.
BASE = {"/etc/passwd": ETC_PASSWD, "/etc/group": GROUP, "/etc/machine-id": MACHINE_ID, "/etc/os-release": OS_RELEASE}

_char = st.one_of(
    st.characters(codec="utf-8", exclude_characters="/\0", exclude_categories=["Cs"]),
    st.sampled_from(list(" \t\"'\\%#-~:.\n\r\x7f")),
    st.integers(0x80, 0xFF).map(lambda b: chr(0xDC00 + b)),  # a raw byte that is not UTF-8
)
_component = st.text(_char, min_size=1, max_size=12).filter(
    lambda c: c not in (".", "..") and len(c.encode("utf-8", "surrogateescape")) <= 255)
_path = st.lists(_component, min_size=1, max_size=3).map(lambda cs: "/t/" + "/".join(cs))
# An argument of "-" is NixOS' "unset" to render_rule (none is written).
_text = st.text(_char, min_size=1, max_size=40).filter(lambda t: t != "-")

# Raw arguments (taken as written by systemd) and what they mean.
XATTRS = {  # t/T: name=value words, unquoted and unescaped; '%' is literal (render writes %%)
    "user.a=1": [("user.a", "1")],
    'user.b="two words" user.c=x\\ty': [("user.b", "two words"), ("user.c", "x\ty")],
    "user.p=100% 'user.q=it''s'": [("user.p", "100%"), ("user.q", "its")],
    "trusted.t=\\x41\\\\": [("trusted.t", "A\\")],
}
ACLS = ["u:1000:rwx", "g:100:r-x", "u::rwx,g::r-x,o::---", "d:u:1001:rwX", "m::rw-,u:1001:r--",
        "u:1000:rw-,d:g:100:r-x"]  # numeric: systemd looks names up in the host's NSS
ATTRIBUTES = ["+d", "-A", "+dA", "-d"]  # no immutable or append-only flags, no '=' (see test_generated)
CAPABILITIES = ["cap_net_raw+ep", "cap_kill,cap_chown=p", "cap_setuid+i"]
# C sources, made in every root (systemd skips a line whose source is missing).
SOURCES = ["/src", "/src dir/with space", "/per%cent", "/back\\slash", "/quote\"d'"]
AGES: dict[str, Age] = {
    "10d": Age(10 * 86_400_000_000),
    "1h 30min": Age(5_400_000_000),
    "~1w": Age(7 * 86_400_000_000, keep_first_level=True),
    "ab:1h": Age(3_600_000_000, AgeBy.ATIME | AgeBy.BTIME, AGE_BY_DEFAULT_DIR),
    "aAmM:0": Age(0, AgeBy.ATIME | AgeBy.MTIME, AgeBy.ATIME | AgeBy.MTIME),
    "~cC:5s": Age(5_000_000, AgeBy.CTIME, AgeBy.CTIME, keep_first_level=True),
    "infinity": Age(USEC_INFINITY),
    "0": Age(0),
}
TYPES = ["f", "f+", "F", "w", "w+", "d", "D", "e", "v", "q", "Q", "p", "p+", "L", "L+", "c", "c+", "b", "b+",
         "C", "C+", "x", "X", "r", "R", "z", "Z", "t", "T", "a", "a+", "A", "A+", "h", "H", "k", "K", "f~", "w~"]
_REPLACEABLE = frozenset("fFdDvqQpLcbC")  # '=' where it means something
_PURGEABLE = frozenset(t.value for t in ItemType if t.purgeable)
_NO_ARGUMENT = frozenset("dDevqQpxXrRzZ")


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    kind = draw(st.sampled_from(TYPES))
    letter = kind[0]
    mods = ""
    for mod, applies in (("-", True), ("!", True), ("=", letter in _REPLACEABLE), ("$", letter in _PURGEABLE),
                         ("?", letter == "L")):
        if applies and draw(st.integers(0, 4)) == 0:
            mods += mod
    mode = draw(st.none() | st.integers(0, 0o7777)
                | st.builds(lambda p, m: f"{p}{m:04o}", st.sampled_from(["~", ":", "~:"]), st.integers(0, 0o7777)))
    user = draw(st.none() | st.sampled_from(sorted(USERS)) | st.sampled_from(["0", "1000", ":alice", ":1001"]))
    group = draw(st.none() | st.sampled_from(sorted(GROUPS)) | st.sampled_from(["100", ":users"]))
    age: str | int | None = draw(st.none() | st.sampled_from(sorted(AGES)) | st.integers(0, 10**13)
                                 | st.just(USEC_INFINITY))
    if letter == "r" and isinstance(age, str) and age.startswith("~"):
        age = None  # "Age modifier '~' is not supported for r lines."
    argument = data = None
    match letter:
        case "f" | "F" | "w":
            if kind.endswith("~"):
                data = draw(st.binary(min_size=1, max_size=40))
            else:
                argument = draw(_text if letter == "w" else st.none() | _text)
        case "L":
            argument = draw(_text)
        case "C":
            argument = draw(st.sampled_from(SOURCES))
        case "c" | "b":
            argument = "{}:{}".format(*draw(st.tuples(st.integers(0, 511), st.integers(0, 255))))
        case "t" | "T":
            argument = draw(st.sampled_from(sorted(XATTRS)))
        case "a" | "A":
            argument = draw(st.sampled_from(ACLS))
        case "h" | "H":
            argument = draw(st.sampled_from(ATTRIBUTES))
        case "k" | "K":
            argument = draw(st.sampled_from(CAPABILITIES))
    return Rule(kind.removesuffix("~") + mods, draw(_path), mode, user, group, age, argument, data)


def _load(root: Path, data: bytes) -> tuple[list[Message], list[Item]]:
    conf = root.parent / "r.conf"
    conf.write_bytes(data)
    messages: list[Message] = []
    config = load(LoadOptions(configs=(str(conf),), root=str(root), boot=True), messages.append)
    assert not config.invalid
    assert not config.read_failed
    return messages, [i for g in (*config.groups, *config.globs) for i in g.items]


def _mode(rule: Rule) -> tuple[int, bool, bool, bool]:
    """(mode, set, masked, only_create) as the rule writes them."""
    itype = ItemType(rule.type[0])
    default = 0o755 if itype.is_directory else 0o644
    if rule.mode is None:
        return default, False, False, False
    if isinstance(rule.mode, int):
        return rule.mode, True, False, False
    digits = rule.mode.lstrip("~:")
    prefix = rule.mode[:len(rule.mode) - len(digits)]
    return int(digits, 8), True, "~" in prefix, ":" in prefix


def _owner(name: str | int | None, table: dict[str, int]) -> tuple[int, bool] | None:
    if name is None:
        return None
    text = str(name)
    only = text.startswith(":")
    text = text.removeprefix(":")
    return (int(text) if text.isdigit() else table[text]), only


def _age(age: str | int | None) -> Age | None:
    if age is None:
        return None
    if isinstance(age, int):
        return Age(age)
    return AGES[age]


def _content(rule: Rule) -> bytes | None:
    if rule.data is not None:
        return rule.data
    return None if rule.argument is None else rule.argument.encode("utf-8", "surrogateescape")


def check_item(item: Item, rule: Rule) -> None:
    """freshroot's item for ``rule`` has exactly the rule's values."""
    letter, mods = rule.type[0], rule.type[1:]
    assert item.type is ItemType(letter)
    assert item.path == rule.path
    assert (item.plus, item.boot, item.allow_failure, item.try_replace, item.purge, item.if_exists) == (
        "+" in mods or letter == "F", "!" in mods, "-" in mods, "=" in mods, "$" in mods, "?" in mods)
    assert (item.mode, item.mode_set, item.mode_masked, item.mode_only_create) == _mode(rule)
    assert ((item.uid.id, item.uid.only_create) if item.uid else None) == _owner(rule.user, USERS)
    assert ((item.gid.id, item.gid.only_create) if item.gid else None) == _owner(rule.group, GROUPS)
    assert item.age == _age(rule.age)
    match letter:
        case "f" | "F" | "w":
            assert item.content == _content(rule)
        case "L" | "C" | "a" | "A" | "k" | "K":
            assert item.argument == rule.argument
        case "c" | "b":
            assert rule.argument is not None
            assert item.device == tuple(int(n) for n in rule.argument.split(":"))
        case "t" | "T":
            assert rule.argument is not None
            assert item.xattrs == tuple((n, v.encode()) for n, v in XATTRS[rule.argument])
        case "h" | "H":
            assert (item.attribute_value, item.attribute_mask) == fields.parse_attributes(rule.argument, rule.path)
        case _:
            assert letter in _NO_ARGUMENT
            assert item.argument is None


def _encoded(rule: Rule) -> bytes:
    return (render_rule(rule, literal_percent=True) + "\n").encode("utf-8", "surrogateescape")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=rules())
def test_render_parse_roundtrip(rule: Rule, tmp_path: Path) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    root = make_root(work / "root")
    for source in SOURCES:
        (root / source.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / source.lstrip("/")).touch()
    messages, items = _load(root, _encoded(rule))
    assert [m for m in messages if m.level <= Level.INFO] == []
    assert len(items) == 1
    check_item(items[0], rule)
    shutil.rmtree(work)


# The starting tree for a rule: its path already there for the lines that act on existing
# paths (a file, or a directory with a file in it for the recursive and directory ones).
_ON_FILE = frozenset("wzxrtahk")
_ON_DIR = frozenset("eZXRDTAHK")
SOURCE_NODES = (D("/src"), F("/src/one", "1"), D("/src dir"), F("/src dir/with space", "w"), F("/per%cent", "p"),
                F("/back\\slash", "b"), F("/quote\"d'", "q"))


def _tree(rule: Rule) -> tuple[Node, ...]:
    letter = rule.type[0]
    nodes: list[Node] = [D("/t"), *SOURCE_NODES]
    if letter in _ON_FILE:
        nodes.append(F(rule.path, "old\n"))
    elif letter in _ON_DIR:
        nodes += [D(rule.path), F(rule.path + "/in", "in\n")]
    return tuple(nodes)


def _args(rule: Rule) -> tuple[str, ...]:
    return ("--create", "--remove", "--boot", *(("--purge",) if "$" in rule.type else ()))


def _created_as_written(rule: Rule, node: dict[str, object]) -> None:
    """A node the line created has the rule's values (where nothing else decides them)."""
    letter = rule.type[0]
    mode, _, masked, _ = _mode(rule)
    owner = _owner(rule.user, USERS)
    group = _owner(rule.group, GROUPS)
    kinds = {"f": "file", "F": "file", "d": "dir", "D": "dir", "v": "dir", "q": "dir", "Q": "dir",
             "p": "fifo", "L": "symlink", "c": "char", "b": "block"}
    assert node["type"] == kinds[letter]
    if letter == "L":
        assert rule.argument is not None
        assert isinstance(node["target"], str)
        assert os.fsencode(node["target"]) == rule.argument.encode("utf-8", "surrogateescape")
        return
    if not masked:
        assert node["mode"] == f"{mode:04o}"
    assert node["uid"] == (owner[0] if owner else 0)
    assert node["gid"] == (group[0] if group else 0)
    if letter in "fF":
        assert node["sha256"] == hashlib.sha256(_content(rule) or b"").hexdigest()[:16]
    elif letter in "cb":
        assert rule.argument is not None
        assert node["rdev"] == tuple(int(n) for n in rule.argument.split(":"))


def _apply_both(case: Case, data: bytes, oracles: Path, scratch: Path) -> tuple[Outcome, Outcome]:
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "case.conf").write_bytes(data)  # bytes: run_in leaves an existing case.conf alone
    return (run_in(case, scratch, "systemd", oracles / "systemd-tmpfiles-new"),
            run_in(case, scratch, "freshroot", None))




@pytest.mark.oracle
@pytest.mark.root
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=rules())
def test_rendered_line_means_the_same_to_systemd(rule: Rule, tmp_path: Path, oracles: Path) -> None:
    scratch = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        case = Case("rendered", "", _tree(rule), _args(rule), base=BASE)
        theirs, ours = _apply_both(case, _encoded(rule), oracles, scratch)
        problems = differences(case, theirs, ours, scratch)
        assert not problems, f"{render_rule(rule, literal_percent=True)!r}\n" + "\n".join(problems)
        assert theirs.status == 0, theirs.stderr
        assert not [m for m in theirs.stderr.splitlines() if not m.startswith("Would ")], theirs.stderr
        if rule.type[0] in "fFdvqQpLcb" and "?" not in rule.type:  # (D's directory is there already)
            # The snapshot names entries as os.listdir() does: bytes that are UTF-8 decoded.
            path = rule.path.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
            _created_as_written(rule, theirs.tree[path])
    finally:
        rmtree_scratch(scratch)


# --- NixOS' systemd.tmpfiles.settings -----------------------------------------------------

# NixOS strings are Unicode, and '%' in them is a specifier: no raw bytes, no '%'.
_nix_char = st.one_of(st.characters(codec="utf-8", exclude_characters="/\0%", exclude_categories=["Cs"]),
                      st.sampled_from(list(" \t\"'\\#-~:.\n")))
_nix_component = st.text(_nix_char, min_size=1, max_size=10).filter(lambda c: c not in (".", ".."))
_nix_path = st.lists(_nix_component, min_size=1, max_size=2).map(lambda cs: "/t/" + "/".join(cs))
_nix_text = st.text(_nix_char, min_size=1, max_size=30).filter(lambda t: t != "-")
NIX_TYPES = ["d", "D", "f", "f+", "L+", "C", "z", "x", "r", "R", "w", "a+", "e", "p", "t"]


@st.composite
def _nix_entry(draw: st.DrawFn, kind: str) -> dict[str, str | None]:
    entry: dict[str, str | None] = {
        "mode": draw(st.sampled_from([None, "-", "0750", "~0700", ":0644", "1777"])),
        "user": draw(st.sampled_from([None, "-", "alice", ":bob", "0"])),
        "group": draw(st.sampled_from([None, "-", "users", ":wheel"])),
        # "~" is refused on r lines
        "age": draw(st.sampled_from([None, "-", "10d", "ab:1h", *(["~1w"] if kind != "r" else [])])),
    }
    match kind[0]:
        case "f" | "w":
            entry["argument"] = draw(_nix_text if kind == "w" else st.none() | _nix_text)
        case "L":
            entry["argument"] = draw(_nix_text)
        case "C":
            entry["argument"] = draw(st.sampled_from([s for s in SOURCES if "%" not in s]))
        case "a":
            entry["argument"] = draw(st.sampled_from(ACLS))
        case "t":
            entry["argument"] = "user.a=1"
    return {k: v for k, v in entry.items() if v is not None}


@st.composite
def nixos_settings(draw: st.DrawFn) -> dict[str, dict[str, dict[str, dict[str, str | None]]]]:
    names = draw(st.lists(st.sampled_from(["00-base", "10-app", "20-other"]), min_size=1, max_size=2, unique=True))
    # One type per path and each path in one file: then every entry is exactly one item.
    # No path below another: each line acts on its own entry (and the starting tree can hold them).
    all_paths = draw(st.lists(_nix_path, min_size=len(names), max_size=5, unique=True).filter(
        lambda ps: not any(a != b and b.startswith(a + "/") for a in ps for b in ps)))
    out: dict[str, dict[str, dict[str, dict[str, str | None]]]] = {name: {} for name in names}
    for n, path in enumerate(all_paths):
        kind = draw(st.sampled_from(NIX_TYPES))
        out[names[n % len(names)]][path] = {kind: draw(_nix_entry(kind))}
    return out


def _settings_tree(entries: list[Rule]) -> tuple[Node, ...]:
    nodes: list[Node] = [D("/t"), *SOURCE_NODES]
    for rule in entries:
        letter = rule.type[0]
        if letter in _ON_FILE:
            nodes.append(F(rule.path, "old\n"))
        elif letter in _ON_DIR:
            nodes += [D(rule.path), F(rule.path + "/in", "in\n")]
    return tuple(nodes)


def _host_id(match: re.Match[str]) -> str:
    """An ACL entry's name as the number systemd looked it up as (in the host's NSS)."""
    tag, name = match.group(1), match.group(2)
    if name.isdigit():
        return match.group(0)
    try:
        number = pwd.getpwnam(name).pw_uid if tag == "u" else grp.getgrnam(name).gr_gid
    except KeyError:
        return match.group(0)
    return f"{tag}:{number}:"


def _normalised(stderr: str, root: Path) -> list[str]:
    """Lines with the root written {root}, sorted; in "Would set ... ACL" lines, systemd's user
    and group names (the host's, see differences.py "acl-names-in-root") as numbers."""
    out = []
    for raw in stderr.splitlines():
        if not raw:
            continue  # systemd splits a message at its line breaks and drops the empty parts
        line = raw.replace(str(root), "{root}")
        if line.startswith("Would set ") and " ACL " in line:
            line = re.sub(r"\b([ug]):([^:,\s]+):", _host_id, line)
        out.append(line)
    return sorted(out)


@pytest.mark.oracle
@pytest.mark.root
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=nixos_settings())
def test_nixos_settings_mean_the_same_to_systemd(spec: dict[str, dict[str, dict[str, dict[str, str | None]]]],
                                                 tmp_path: Path, oracles: Path) -> None:
    files = render_settings(spec)
    text = "".join(files[name] for name in sorted(files))
    rules_ = [r for name in sorted(spec) for r in settings_rules(spec[name])]
    scratch = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        # freshroot's parse, item by item against the settings (one item per entry, in order).
        root = make_root(scratch / "parse")
        for source in SOURCES:
            (root / source.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / source.lstrip("/")).touch()
        messages, items = _load(root, text.encode())
        assert [m for m in messages if m.level <= Level.INFO] == []
        assert sorted(i.path for i in items) == sorted(r.path for r in rules_)
        by_path = {i.path: i for i in items}
        for rule in rules_:
            check_item(by_path[rule.path], _nix_rule(rule))
        # systemd 262's parse, seen through what it does: a dry run line by line, and for real.
        tree = _settings_tree(rules_)
        dry = Case("nixos-dry", "", tree, ("--create", "--dry-run"), base=BASE)
        theirs, ours = _apply_both(dry, text.encode(), oracles, scratch / "dry")
        assert theirs.status == ours.status, theirs.stderr + ours.stderr  # 73 for a line below a missing parent
        assert (_normalised(theirs.stderr, scratch / "dry/systemd")
                == _normalised(ours.stderr, scratch / "dry/freshroot"))
        real = Case("nixos", "", tree, ("--create", "--remove"), base=BASE)
        theirs, ours = _apply_both(real, text.encode(), oracles, scratch / "real")
        problems = differences(real, theirs, ours, scratch / "real")
        assert not problems, text + "\n".join(problems)
        assert theirs.status == 0, theirs.stderr
    finally:
        rmtree_scratch(scratch)


def _nix_rule(rule: Rule) -> Rule:
    """A settings rule as check_item reads rules: NixOS' "-" is an unset field."""
    def unset(v: str | int | None) -> str | int | None:
        return None if v in ("-", "") else v

    return Rule(rule.type, rule.path, unset(rule.mode), unset(rule.user), unset(rule.group), unset(rule.age),
                rule.argument)


def test_settings_render_like_nixos() -> None:
    files = render_settings({
        "10-app": {
            "/var/lib/app": {"d": {"mode": "0750", "user": "app", "group": "app", "age": "-"}},
            "/run/app/sock link": {"L+": {"argument": "/var/lib/app/sock"}},
            "/etc/motd": {"f": {"mode": "0644", "argument": "Hello \"world\"\n"}},
        },
        "20-other": {"/tmp/x": {"any": {"type": "x"}}},
    })
    assert files == {
        "10-app.conf": "d /var/lib/app 0750 app app -\n"
                       "L+ /run/app/sock\\x20link - - - - /var/lib/app/sock\n"
                       'f /etc/motd 0644 - - - Hello \\"world\\"\\n\n',
        "20-other.conf": "x /tmp/x - - - -\n",
    }


def test_literal_percent_in_xattr_arguments() -> None:
    """t/T arguments are specifier-expanded by systemd: literal_percent doubles their '%' too."""
    rule = Rule("t", "/t/x", argument="user.p=100%")
    assert render_rule(rule, literal_percent=True) == "t /t/x - - - - user.p=100%%"
    assert render_rule(rule) == "t /t/x - - - - user.p=100%"
    assert render_rule(Rule("a", "/t/x", argument="u:1000:rwx"), literal_percent=True).endswith(" u:1000:rwx")


def test_content_that_is_a_dash_is_written_escaped() -> None:
    # "-" as a line's argument means "none"; content that is the one byte "-" must survive
    # (a case the round trip found), while NixOS's "-" for an unset argument stays unset.
    assert render_rule(Rule(type="f", path="/t/0", data=b"-")) == "f /t/0 - - - - \\x2d"
    assert render_rule(Rule(type="f", path="/t/0", argument="-")) == "f /t/0 - - - -"
