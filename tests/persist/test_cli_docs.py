"""The persistence commands' options and help against docs/persistence.md and the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from freshroot import cli
from freshroot.config.search import SEARCH_DIRS

DOC = Path(__file__).parents[2] / "docs" / "persistence.md"
COMMANDS = ("status", "migrate", "undo", "audit")


def _parser(name: str) -> argparse.ArgumentParser:
    top = cli.build_parser([name])
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices[name]
    return parser


def _options(name: str) -> set[str]:
    return set(_parser(name)._option_string_actions)


def _help(name: str, option: str) -> str:
    return next(a.help or "" for a in _parser(name)._actions if option in a.option_strings)


def test_commands_table_lists_only_real_options() -> None:
    text = DOC.read_text()
    table = text[text.index("## Commands"):]
    for name in COMMANDS:
        row = re.search(rf"^\| `freshroot {name}( [^`]*)?`", table, re.M)
        assert row is not None, name
        assert set(re.findall(r"--[a-z-]+", row[0])) <= _options(name), row[0]


def test_config_is_taken_by_every_command_as_the_docs_say() -> None:
    text = " ".join(DOC.read_text().split())
    assert "all take `--config PATH`" in text
    assert "Undo works from the state store, not from the declaration" in text
    assert {n for n in COMMANDS if "--config" not in _options(n)} == set()
    assert all("--root" in _options(n) for n in COMMANDS)
    assert "only checked" in _parser("undo").description  # type: ignore[operator]


def test_undo_checks_a_given_config_and_refuses_a_bad_one(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: undo refused --config as an unknown argument (issue 15 #6)."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[persits."/persist"]\n')
    root = tmp_path / "root"
    root.mkdir()
    assert cli.main(["undo", "--root", str(root), "--config", str(bad), "--dry-run"]) == 65
    assert f"{bad}:1: unknown section persits" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text("")
    assert cli.main(["undo", "--root", str(root), "--config", str(good), "--dry-run"]) == 0
    assert "nothing to undo" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["status", "audit", "migrate"])
def test_config_help_names_every_search_directory(name: str) -> None:
    text = _help(name, "--config")
    dirs = [d.removesuffix("/freshroot") for d in SEARCH_DIRS]  # /etc ... /usr/lib, as searched
    assert all(d in text for d in dirs), text
    assert [text.index(d) for d in dirs] == sorted(text.index(d) for d in dirs)
    doc = " ".join(DOC.read_text().split())
    read_from = doc[doc.index("The declaration is read from"):][:200]
    assert all(f"`{d}`" in read_from for d in dirs[1:]), read_from


def test_audit_limit_help_says_how_groups_are_ranked() -> None:
    text = _help("audit", "--limit")
    assert "largest" not in text  # by default groups are counted, not measured
    assert "most files first" in text
    assert "--sizes" in text
