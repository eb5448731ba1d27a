"""The man pages under man/: what freshroot.manpages writes now from the parsers and docs,
rendered by man and groff without a warning, every command and option on its page."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from freshroot import cli, manpages
from freshroot.features import SECTIONS
from freshroot.systemd import units
from freshroot.tmpfiles import commands as tmpfiles_commands

REPO = Path(__file__).resolve().parents[1]
MAN = REPO / "man"


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return manpages.render_all(REPO / "docs")


def test_committed_pages_are_up_to_date(pages):
    """Regenerate and compare: run tools/make-man after changing an option, a help text or
    the docs' tables."""
    assert sorted(pages) == sorted(manpages.PAGES)
    committed = {p.name: p.read_text() for p in MAN.iterdir()}
    stale = [name for name in pages if committed.get(name) != pages[name]]
    assert not stale, f"man/{stale} differ from what tools/make-man writes: run tools/make-man"
    assert set(committed) == set(pages), "man/ holds a page nothing generates"


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings}


def _text(page: str) -> str:
    """The page as words: roff's escaped minus signs as plain ones."""
    return page.replace("\\-", "-")


def test_every_command_and_option_is_on_freshroot_8(pages):
    text = _text(pages["freshroot.8"])
    for name, _summary, parser in manpages.full_command_parsers():
        assert f".SS {name}\n" in text
        for option in _options(parser):
            assert f"\\fB{option}\\fR" in text, (name, option)
    assert cli.build_parser([]).description is not None


def test_every_tmpfiles_option_is_on_its_page(pages):
    text = _text(pages["freshroot-tmpfiles.8"])
    for option in _options(tmpfiles_commands.build_parser()):
        assert f"\\fB{option}\\fR" in text, option


def test_every_section_and_field_type_is_on_freshroot_toml_5(pages):
    text = pages["freshroot.toml.5"]
    for section in SECTIONS:
        assert manpages.inline(f"`{section.heading}`") in text
    for row in manpages.markdown_table((REPO / "docs" / "configuration.md").read_text(), "| type |"):
        assert f"\\fI{row[0]}\\fR" in text


def test_units_name_only_installed_documentation():
    """Documentation= names man pages the packages install, nothing else."""
    for doc in units.DOCS.split():
        assert doc.startswith("man:"), doc
        name, section = doc.removeprefix("man:").removesuffix(")").split("(")
        assert (MAN / f"{name}.{section}").is_file(), doc


def test_inline_markup():
    assert manpages.inline("`--root` and **x** [docs](a.md) c:\\d") == \
        "\\fB\\-\\-root\\fR and \\fBx\\fR docs c:\\ed"
    assert manpages._line(".hidden") == "\\&.hidden"


@pytest.mark.parametrize("page", manpages.PAGES)
def test_groff_renders_without_warnings(page):
    if shutil.which("groff") is None:
        pytest.skip("needs groff (groff-base)")
    result = subprocess.run(["groff", "-man", "-ww", "-z", MAN / page], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("page", manpages.PAGES)
def test_man_renders_without_warnings(page):
    if shutil.which("man") is None:
        pytest.skip("needs man (man-db)")
    result = subprocess.run(["man", "-l", "--warnings=w", MAN / page], capture_output=True, text=True, check=False,
                            env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0", "LC_ALL": "C.UTF-8"})
    assert result.returncode == 0
    assert result.stderr == ""
    assert page.split(".")[0].upper() in result.stdout
