"""``freshroot config show`` and ``check`` end to end through the CLI dispatcher."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from freshroot import features
from freshroot.cli import main
from freshroot.config.parse import parse_text
from freshroot.config.render import to_toml
from freshroot.config.table import Table
from freshroot.errors import EXIT_DATAERR
from tests.config.tomlgen import documents

DECLARATION = """\
[persist."/persist"]
hide-mounts = true
directories = [
  "/var/log",
  { path = "/var/lib/colord", user = "colord", mode = "0700" },
]

[activation.hello]
text = "echo hello"
deps = ["etc"]
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc/freshroot/conf.d").mkdir(parents=True)
    (r / "etc/freshroot/freshroot.toml").write_text(DECLARATION)
    (r / "etc/freshroot/conf.d/10-more.toml").write_text('[persist."/persist"]\ndirectories = ["/srv"]\n')
    return r


def test_show_prints_toml_that_reads_back_the_same(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--root", str(root)]) == 0
    data = tomllib.loads(capsys.readouterr().out)
    assert data["persist"]["/persist"]["directories"][2] == "/srv"
    assert data["activation"] == {"hello": {"text": "echo hello", "deps": ["etc"]}}


def test_show_verbose_annotates_each_value(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--root", str(root), "--verbose"]) == 0
    out = capsys.readouterr().out
    # the files as the root sees them, the root named once, first (docs/activation.md)
    assert out.startswith(f"# declaration of {root}\n# read /etc/freshroot/freshroot.toml\n")
    assert "# read /etc/freshroot/conf.d/10-more.toml\n" in out
    assert '  "/srv",  # /etc/freshroot/conf.d/10-more.toml:2\n' in out
    assert "hide-mounts = true  # /etc/freshroot/freshroot.toml:2\n" in out
    assert out.count(str(root)) == 1
    tomllib.loads(out)  # annotations are comments


def test_show_json_verbose(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--root", str(root), "--json", "-v"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["root"] == str(root)
    assert document["files"] == ["/etc/freshroot/freshroot.toml", "/etc/freshroot/conf.d/10-more.toml"]
    assert document["declaration"]["persist"]["/persist"]["hide-mounts"] is True
    assert document["locations"]['persist."/persist".directories[1].mode'] == "/etc/freshroot/freshroot.toml:5"


def test_check_lists_sections(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--root", str(root), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert set(document["sections"]) == {"persist", "activation"}


def test_check_refuses_a_misspelt_section(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/freshroot/conf.d/20-typo.toml").write_text('\n[persits."/persist"]\ndirectories = []\n')
    assert main(["config", "check", "--root", str(root)]) == EXIT_DATAERR
    err = capsys.readouterr().err
    assert "freshroot: /etc/freshroot/conf.d/20-typo.toml:2: unknown section persits" in err
    assert err.endswith(f"\n  root: {root}\n")  # the root the file is in, named once


def test_syntax_error_exits_65_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("a = 1\nb = [\n")
    assert main(["config", "show", "--config", str(bad)]) == EXIT_DATAERR
    err = capsys.readouterr().err
    assert err.startswith(f"freshroot: {bad}:")
    assert "Traceback" not in err


def test_help_does_not_import_the_loader() -> None:
    code = ("import sys\nfrom freshroot.cli import main\ntry:\n    main(['config', 'show', '--help'])\n"
            "except SystemExit:\n    pass\nassert 'freshroot.config.load' not in sys.modules\n"
            "assert 'tomllib' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def _normal(value: Any) -> Any:
    """nan != nan; compare it as a marker."""
    if isinstance(value, float) and math.isnan(value):
        return "<nan>"
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_rendered_toml_round_trips(doc: tuple[str, dict[tuple[str | int, ...], int]]) -> None:
    text, _ = doc
    table = parse_text(text, "gen.toml").table()
    for verbose in (False, True):
        assert _normal(tomllib.loads(to_toml(table, verbose=verbose))) == _normal(table.data)


def test_check_text_lists_files_masks_and_sections(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/freshroot/conf.d/20-off.toml").symlink_to("/dev/null")
    assert main(["config", "check", "--root", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"declaration of {root}",
        "read /etc/freshroot/freshroot.toml",
        "read /etc/freshroot/conf.d/10-more.toml",
        "masked by /etc/freshroot/conf.d/20-off.toml",
        "[persist]: valid",
        "[activation]: valid",
    ]


def test_check_without_a_declaration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "no declaration found (nothing to check)\n"


def reject_persist(table: Table) -> None:
    """A stand-in section parser, as the persistence part registers its own."""
    raise table.get_table("persist").error("no storage may be called /persist here", "/persist")


def test_check_runs_registered_section_parsers(root: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(features.BY_SECTION, "persist", features.Feature(
        "persist", "freshroot.persist", "test", check="tests.config.test_command:reject_persist"))
    assert main(["config", "check", "--root", str(root)]) == EXIT_DATAERR
    err = capsys.readouterr().err
    assert "/etc/freshroot/freshroot.toml:1: no storage may be called /persist here" in err
