"""The capability text of k/K lines, probe by probe against systemd-tmpfiles 262 (its own
parser, not libcap's cap_from_text): the same file capabilities, exit status and messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshroot.tmpfiles import caps
from tests.tmpfiles.harness import Case, D, F, Outcome, apply_both, compare

pytestmark = [pytest.mark.oracle, pytest.mark.root]

PROBES = (
    # plain texts
    "cap_net_raw+ep", "cap_net_bind_service=ep", "cap_chown,cap_kill+ei", "all=p", "=ep", "all=ep",
    "cap_setuid=i", "cap_setuid=ei", "cap_setuid=epi", "cap_setuid=pe", "cap_kill=pp", "cap_setuid+",
    "cap_kill=", "=", "cap_kill-p", "cap_bpf=p", "CAP_CHECKPOINT_RESTORE=p",
    # repeated clauses: '=' adds, as '+' does
    "cap_setuid=ep cap_setuid=p", "cap_setuid=e cap_setuid=p", "cap_setuid=ep cap_setuid=",
    "cap_setuid=ep cap_setuid-e", "cap_setuid=p cap_setuid+e", "cap_setuid=ep =", "cap_setuid=ep all-e",
    "all=p cap_setuid=i", "cap_setuid=p cap_setuid=i", "cap_setuid+p cap_setuid-p", "cap_kill+p cap_kill=p",
    "cap_kill=p cap_kill=e", "all=ep cap_sys_admin-e",
    # one operator per clause, lower-case flags only
    "cap_setuid+ep-e", "cap_setuid+e+p", "cap_setuid=e+p", "cap_setuid=p-p", "cap_setuid=p+", "cap_kill=p=i",
    "cap_setuid+EP", "cap_kill=p,", "cap_kill", "rootuid",
    # names: any case with cap_, numbers (strtol base 0) up to 62, 'all' in lower case
    "CAP_SETUID+ep", "Cap_SetUid=p", "setuid+ep", "cap_nonsense+ep", "cap_12+p", "cap_41=p", "cap_all=p",
    "12=ep", "0xc=p", "0XC=p", "014=p", "00=p", "08=p", "0x=p", "0x3e=p", "40=p", "41=p", "62=p", "63=p",
    "+12=p", "-1=p", "99999999999=p", "ALL=p", "All=p", "all,cap_kill=p", "cap_sys_admin,12,0x1=ep",
    # commas and blanks
    "cap_setuid,+ep", "cap_kill,cap_chown+p", "cap_kill,,cap_chown+p", ",cap_kill+p", ",=p",
    "cap_kill, cap_chown+p", "cap_setuid=ep,cap_kill=p", "cap_kill=p\tcap_chown=p", "cap_kill=p\t",
    "cap_kill=p  cap_chown=i",
    # quotes and backslashes
    '"cap_kill=p"', "'cap_kill=p'", 'cap_"kill"=p', "cap_kill='p'", '"cap_kill=p', 'cap_kill=p\\',
    "cap_\\kill=p", "cap_kill\\=p", 'cap_kill=p\\ cap_chown=p', '""', "'' cap_kill=p",
    '"cap_kill=p cap_chown=p"', 'cap_kill=p "rootuid=7"',
    # rootuid=
    "cap_setuid+ep rootuid=5", "rootuid=5", "cap_kill=p rootuid=5 rootuid=6", "cap_kill=p rootuid=0",
    "cap_kill=p rootuid=1000 cap_chown=p", "rootuid=abc cap_kill=p", "cap_kill=p rootuid=-1",
    "cap_kill=p rootuid=0x10", "cap_kill=p ROOTUID=5", "cap_kill=p rootuid=", "cap_kill=p rootuid=+5",
    "cap_kill=p rootuid=05", "cap_kill=p rootuid=65535", "cap_kill=p rootuid=4294967295",
    "cap_kill=p rootuid=4294967296", "cap_kill=p rootuid=99999999999999999999", "rootuid=5=p",
    "cap_kill=p rootuid=4294967295 bogus", "bogus rootuid=4294967295",
    # effective bits that are neither none nor all of permitted|inheritable: the line fails
    "cap_setuid=e", "cap_setuid+e", "cap_setuid=ep cap_kill=p", "cap_setuid=ep cap_kill=i",
    # mixed texts
    "cap_net_raw,cap_net_admin=ep cap_net_admin-e cap_net_raw-e", "CAP_NET_RAW=eip 13-i",
    "cap_chown,cap_dac_override=p cap_chown=ei cap_dac_override+e",
)


def test_enough_probes() -> None:
    assert len(PROBES) >= 100
    assert len(set(PROBES)) == len(PROBES)


@pytest.mark.parametrize("text", PROBES, ids=repr)
def test_k_text_matches_262(text: str, oracles: Path, scratch: Path) -> None:
    case = Case(f"k {text}", f"k /t/f - - - - {text}\n", (D("/t"), F("/t/f", "x")))
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("text", ["cap_kill=p cap_kill=e", "12=i", "cap_kill+p-p", "rootuid=3 cap_chown=p"], ids=repr)
def test_recursive_and_plus_texts_match_262(text: str, oracles: Path, scratch: Path) -> None:
    """K over a tree, and k+ on a file that has no capabilities yet (over existing ones see
    differences.py, caps-plus-existing)."""
    tree = (D("/t"), F("/t/f", "x"), D("/t/d"), F("/t/d/g", "y"), D("/u"), F("/u/f", "z"))
    case = Case(f"K {text}", f"K /t - - - - {text}\nk+ /u/f - - - - {text}\n", tree)
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, "\n".join(problems)


def test_equals_adds_and_numbers_parse() -> None:
    """Unit checks of the dialect that the probes show (no oracle needed for these)."""
    e, p, i, root = caps.parse("cap_setuid=ep cap_setuid=p")
    assert (e, p, i, root) == (1 << 7, 1 << 7, 0, None)
    assert caps.parse("0xc=p 014=i")[1:3] == (1 << 12, 1 << 12)
    assert caps.parse("cap_kill=p rootuid=7")[3] == 7
    for bad in ("setuid+p", "cap_kill+ep-e", "cap_kill+EP", "63=p", "cap_kill=p rootuid=05"):
        with pytest.raises(caps.CapabilityTextError):
            caps.parse(bad)


PLUS_OVER_EXISTING = ("cap_setuid=", "cap_setuid=i", "cap_setuid=p cap_setuid-p", "cap_setgid-i cap_setgid+i",
                      "cap_setuid=ep cap_setuid=", "cap_kill+p", "cap_setuid-e", "cap_setuid,cap_setgid-eip")


@pytest.mark.parametrize("text", PLUS_OVER_EXISTING, ids=repr)
def test_k_plus_over_existing_sets_the_same_bits_as_262(text: str, oracles: Path, scratch: Path) -> None:
    """k+ on a file with capabilities: '=' clears the named ones first, '-' takes them away.
    systemd 262 writes the result as revision 3 with a stray root uid (differences.py,
    caps-plus-existing), so the capability bits and the exit status are compared, not the bytes."""
    setuid, setgid = 1 << 7, 1 << 6
    before = caps.encode(setuid | setgid, setuid | setgid, setgid)
    tree = (D("/t"), F("/t/f", "x", xattrs=(("security.capability", before),)))
    case = Case(f"k+ {text}", f"k+ /t/f - - - - {text}\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)

    def bits(outcome: Outcome) -> tuple[int, int, int]:
        xattrs = outcome.tree["/t/f"]["xattrs"]
        assert isinstance(xattrs, dict)
        return caps.decode(bytes.fromhex(xattrs["security.capability"]))

    assert bits(theirs) == bits(ours)
    assert theirs.status == ours.status
