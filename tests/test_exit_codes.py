"""The exit-code table of docs/exit-codes.md, command by command, each code in the case that
gives it (issue 15 #3)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from freshroot.cli import main

DOC = Path(__file__).parents[1] / "docs" / "exit-codes.md"

PASSWD = "root:x:0:0:root:/root:/bin/bash\n"
GOOD = '[etc.motd]\ntext = "hi"\n'
BAD = '[persits."/persist"]\ndirectories = ["/var/log"]\n'
ETC_IN_THE_WAY = '[etc.issue]\ntext = "x"\n'  # /etc/issue is made a directory below
PENDING = '[persist."/persist"]\ndirectories = ["/var/log"]\n'
IN_PLACE = '[persist."/persist"]\nfiles = [{ path = "/etc/machine-id", how = "symlink" }]\n'  # linked below
APPLIED = "# applied once before the command runs\n"
CONFLICT = '[persist."/persist"]\ndirectories = ["/var/lib/db"]\n'  # data on both sides below
MISSING = '[persist."/nowhere"]\ndirectories = ["/var/log"]\n'
FILE_IN_THE_WAY = '[persist."/persist"]\nfiles = [{ path = "/etc/issue", how = "bind" }]\n'  # a directory there
ONE_BAD_ENTRY = '[persist."/persist"]\ndirectories = ["relative/path", "/var/lib/kept"]\n'
NOTHING_TO_MOVE = '[persist."/persist"]\ndirectories = ["/usr/bin"]\n'  # an empty directory on the root

# (command line after `freshroot`, declaration, expected code)
CASES: list[tuple[tuple[str, ...], str, int]] = [
    (("apply",), GOOD, 0),
    (("apply",), ETC_IN_THE_WAY, 1),
    (("apply",), BAD, 65),
    (("apply", "--no-such-option"), GOOD, 65),
    (("plan",), GOOD, 0),
    (("plan", "--detailed-exitcode"), GOOD, 2),
    (("plan", "--detailed-exitcode"), APPLIED, 0),
    (("plan",), CONFLICT, 1),
    (("plan", "--detailed-exitcode"), CONFLICT, 1),
    (("plan",), BAD, 65),
    (("status",), IN_PLACE, 0),
    (("status",), PENDING, 2),
    (("status",), CONFLICT, 3),
    (("status",), MISSING, 4),
    (("status",), BAD, 65),
    (("config", "check"), GOOD, 0),
    (("config", "check"), BAD, 65),
    (("render", "--units", "{tmp}/units"), GOOD, 0),
    (("render", "--units", "{tmp}/units"), BAD, 65),
    (("undo", "--dry-run"), GOOD, 0),
    (("undo", "--dry-run"), BAD, 65),
    (("undo",), APPLIED, 0),
    (("migrate", "/not/declared"), PENDING, 65),
    (("migrate", "/var/lib/db"), CONFLICT, 73),
    (("migrate", "/usr/bin"), NOTHING_TO_MOVE, 0),
    (("audit",), GOOD, 0),
    (("audit",), BAD, 65),
    (("install",), GOOD, 0),
    (("install",), BAD, 65),
    (("persist-prepare",), PENDING, 0),
    (("persist-prepare",), MISSING, 1),
    (("persist-prepare",), ONE_BAD_ENTRY, 0),  # boot services: the bad entry is left out, as the generator does
    (("persist-files", "--start"), GOOD, 0),
    (("persist-files", "--start"), FILE_IN_THE_WAY, 1),
    (("persist-files", "--start"), MISSING, 1),
    (("persist-files", "--stop"), GOOD, 0),
    (("persist-files", "--start"), ONE_BAD_ENTRY, 0),
    (("tmpfiles", "render"), GOOD, 0),
]
# Every command refuses an unknown option with 65 (argparse's own 2 is never what a script sees).
COMMANDS = ("apply", "plan", "status", "undo", "audit", "migrate", "config check", "tmpfiles render", "roots",
            "rescue", "image build", "image inspect", "render", "install", "persist-prepare", "persist-files",
            "completion", "facts", "disk plan", "bootstrap", "generations", "rollback", "confirm", "deploy plan")


def _root(tmp: Path) -> Path:
    root = tmp / "root"
    for d in ("etc", "persist", "usr/bin", "bin", "var/lib/db", "persist/var/lib/db", "etc/issue"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "var/lib/db/rows").write_text("root's")
    (root / "persist/var/lib/db/rows").write_text("storage's")
    (root / "persist/etc").mkdir()
    (root / "persist/etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "etc/machine-id").symlink_to("/persist/etc/machine-id")
    return root


@pytest.mark.parametrize(("argv", "text", "code"), CASES,
                         ids=[f"{' '.join(a)}={c}" for a, _, c in CASES])
def test_each_command_exits_as_the_table_says(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              argv: tuple[str, ...], text: str, code: int) -> None:
    root = _root(tmp_path)
    decl = tmp_path / "decl.toml"
    decl.write_text(text)
    args = [a.format(tmp=tmp_path) for a in argv]
    if text == APPLIED:
        assert main(["apply", "--root", str(root), "--config", str(decl)]) == 0
    try:
        got = main([*args, "--root", str(root), "--config", str(decl)])
    except SystemExit as e:  # argparse
        got = int(e.code or 0)
    err = capsys.readouterr().err
    assert got == code, err
    assert "Traceback" not in err


def test_an_operation_failed_outside_any_step_is_73(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    decl = tmp_path / "decl.toml"
    decl.write_text(GOOD)
    for argv in (["apply"], ["plan"], ["status"], ["config", "check"]):
        assert main([*argv, "--root", str(tmp_path / "no-such-root"), "--config", str(decl)]) == 73, argv
    capsys.readouterr()


def test_the_docs_table_has_every_code_the_tests_give() -> None:
    table = {int(m) for m in re.findall(r"^\| (\d+) \|", DOC.read_text(), re.M)}
    assert {c for _, _, c in CASES} | {73, 130} <= table


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_arguments_are_65_for_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                command: str) -> None:
    decl = tmp_path / "decl.toml"
    decl.write_text(GOOD)
    try:
        got = main([*command.split(), "--no-such-option", "--config", str(decl)])
    except SystemExit as e:
        got = int(e.code or 0)
    err = capsys.readouterr().err
    assert got == 65, err
    assert "error:" in err
    assert not (tmp_path / "run").exists()


def test_the_command_list_is_every_command() -> None:
    from freshroot.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = set(sub.choices)
    assert names == {c.split()[0] for c in COMMANDS}


def test_the_boot_services_leave_a_bad_entry_out_and_do_the_rest(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = _root(tmp_path)
    decl = tmp_path / "decl.toml"
    decl.write_text(ONE_BAD_ENTRY)
    assert main(["persist-prepare", "--root", str(root), "--config", str(decl)]) == 0
    out = capsys.readouterr()
    assert "relative/path" in out.out + out.err
    assert (root / "persist/var/lib/kept").is_dir()
    assert (root / "var/lib/kept").is_dir()


def test_the_man_page_lists_the_same_codes() -> None:
    from freshroot.manpages import EXIT_STATUS

    table = {int(m) for m in re.findall(r"^\| (\d+) \|", DOC.read_text(), re.M)}
    assert {int(code) for code, _ in EXIT_STATUS} == table
