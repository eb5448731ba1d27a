"""Only the named command's module builds its arguments; --help still lists every command."""

from __future__ import annotations

import importlib

import pytest

from freshroot import cli, features


def all_commands() -> list[str]:
    names = cli._Names()
    for module in features.COMMAND_MODULES:
        importlib.import_module(module).register(names)
    return [n for n, _ in names.commands]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    commands = all_commands()
    assert len(commands) >= 10
    for name in commands:
        assert f"    {name}" in out


@pytest.mark.parametrize("name", all_commands())
def test_each_command_gets_its_real_arguments(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--debug", name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: freshroot {name}")
    assert "--debug" in out  # a placeholder parser would show -h alone


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["no-such-command"])
    assert exit_info.value.code == 65
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err
