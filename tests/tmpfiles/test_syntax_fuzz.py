"""Generated tmpfiles.d files, good and bad mixed, read by systemd-tmpfiles 262 and by freshroot:
the same messages, the same exit status, the same paths created (dry run)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tmpfiles.syntax_oracle import compare_parse, make_root, our_created_paths, would_paths

pytestmark = pytest.mark.oracle

TYPES = [*"fFwdDevqQpLcbCxXrRzZtThHaAkKmy", "", '""', "#"]
MODIFIERS = ["", "", "", "+", "!", "-", "=", "~", "^", "$", "?", "!-", "+=", "++", "%", "~^", "$+", "?+", "\\x2b"]
PATHS = ["/a", "/run/b", "/b", "/var/run/x", "relative", "/c%%d", "/%m", "/%o/%w", "/%z", "/s\\x20p",
         '"/q u"', "/bad\\q", "/t\\t", "//run/./b/", "/u\\u00e9", "/e%", "/x%a"]
MODES = ["-", "0755", "0700", "~0644", ":0711", "0888", "7777", "rwx", "''", "10000",
         "\\x30644", "\"0 755\"", "~~0644", ":"]
USERS = ["-", "root", "alice", "1000", ":bob", "nosuch", "65535", "05", "4294967294", "%u", "al\\x69ce", "::bob", "''"]
GROUPS = ["-", "root", "users", "10", ":wheel", "nosuch"]
AGES = ["-", "10d", "~1w", "1h30min", "am:1d", "AM:2h", "q:1d", "1x", "-1", "infinity", "0", "1.", "~5",
        "\"1 h\"", "a m:1d", "~~1d", "abcmABCM:1s", "1\\x20d", ":", "m:"]
ARGUMENTS = ["", "", "-", "x", "+i", "YQ", "YQ=", "YQ==x", "Y Q = =", "YR==", "-_-_",
             "hello\\nworld", "%m", "%z", "\\q", "aGVsbG8=", "!!!", "1:3", "user.a=b",
             "+i", "u::rwx", "cap_net_raw+ep", "/etc", "/nonexistent", "a b  c", "1:2:3", "x=", "etc"]


@st.composite
def lines(draw: st.DrawFn) -> str:
    fields = [draw(st.sampled_from(TYPES)) + draw(st.sampled_from(MODIFIERS)), draw(st.sampled_from(PATHS))]
    n = draw(st.integers(0, 5))
    fields.extend(draw(st.sampled_from(pool)) for pool in (MODES, USERS, GROUPS, AGES)[:n])
    if n >= 4:
        argument = draw(st.sampled_from(ARGUMENTS))
        if argument:
            fields.append(argument)
    sep = draw(st.sampled_from([" ", "  ", "\t"]))
    return sep.join(fields)


# FRESHROOT_FUZZ_EXAMPLES raises the count for a long run by hand.
EXAMPLES = int(os.environ.get("FRESHROOT_FUZZ_EXAMPLES", "80"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(lines(), min_size=1, max_size=6))
def test_generated_files_parse_as_systemd(body: list[str], tmp_path: Path, oracles: Path) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    root = make_root(work / "root")
    (root / "etc/copysrc").mkdir()
    # Parents that no line creates: a create below a missing parent fails in the dry run, and
    # that failure (exit 73) belongs to the create phase, not to parsing.
    (root / "run").mkdir()
    (root / "testos").mkdir()
    conf = work / "gen.conf"
    conf.write_text("".join(f"{line}\n" for line in body))
    ref, ours, config = compare_parse(oracles / "systemd-tmpfiles-new", root, conf)
    assert ours.messages == ref.messages
    assert ours.rc == ref.rc
    if ref.rc != 1:
        assert would_paths(ref, root) == our_created_paths(config, root)
    shutil.rmtree(work)
