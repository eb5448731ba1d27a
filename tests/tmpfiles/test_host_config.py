"""This machine's /usr/lib/tmpfiles.d, applied with --create --boot to an empty root (that has
only the host's passwd and group, so names resolve as on the host), gives the same tree as the
newest systemd-tmpfiles: each file on its own, and all of them together."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tmpfiles.harness import MACHINE_ID, Case, compare

HOST_DIR = Path("/usr/lib/tmpfiles.d")
CONFS = sorted(HOST_DIR.glob("*.conf"))


def _base() -> dict[str, str]:
    return {"/etc/passwd": Path("/etc/passwd").read_text(), "/etc/group": Path("/etc/group").read_text(),
            "/etc/machine-id": MACHINE_ID}


pytestmark = [pytest.mark.oracle, pytest.mark.root]


def test_host_has_configuration() -> None:
    assert CONFS, f"{HOST_DIR} holds no .conf files on this machine"


@pytest.mark.parametrize("conf", CONFS, ids=lambda p: p.name)
def test_each_host_file(conf: Path, oracles: Path, scratch: Path) -> None:
    case = Case(conf.name, conf.read_text(), (), ("--create", "--boot"), base=_base())
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, f"{conf}:\n" + "\n".join(problems)


def test_all_host_files_together(oracles: Path, scratch: Path) -> None:
    text = "".join(p.read_text() + "\n" for p in CONFS)
    case = Case("all", text, (), ("--create", "--boot"), base=_base())
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, "\n".join(problems)
