"""cli.dispatch: one handler turns errors into messages and exit codes; tracebacks only with --debug."""

from __future__ import annotations

import argparse
import errno
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot import cli
from freshroot.errors import ConfigError, FreshrootError, Location, OperationError

VENV_BIN = Path(sys.executable).parent


def ok(args: argparse.Namespace) -> int:
    print(f"ok root={args.root}")
    return 0


def config_error(_: argparse.Namespace) -> int:
    raise ConfigError("unknown key 'foo'", location=Location("/etc/freshroot/freshroot.toml", 12),
                      hint="remove it")


def operation_error(_: argparse.Namespace) -> int:
    raise OperationError("/var/lib/x: cannot create: read-only file system")


def other_error(_: argparse.Namespace) -> int:
    raise FreshrootError("lock held by pid 7")


def os_error(_: argparse.Namespace) -> int:
    raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/etc/missing")


def bug(_: argparse.Namespace) -> int:
    raise RuntimeError("boom")


def interrupted(_: argparse.Namespace) -> int:
    raise KeyboardInterrupt


def parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(prog="freshroot")
    p.add_argument("--debug", action="store_true")
    sub = p.add_subparsers(parser_class=cli.ArgumentParser)
    for name in ("ok", "config_error", "operation_error", "other_error", "os_error", "bug", "interrupted"):
        c = cli.add_command(sub, name.replace("_", "-"), handler=f"tests.test_cli:{name}", help=name)
        cli.add_common(c, json=True, dry_run=True)
    return p


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.dispatch(list(argv), parser(), "freshroot")
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("command", "code", "message"), [
    ("config-error", 65, "freshroot: /etc/freshroot/freshroot.toml:12: unknown key 'foo'\n  hint: remove it\n"),
    ("operation-error", 73, "freshroot: /var/lib/x: cannot create: read-only file system\n"),
    ("other-error", 1, "freshroot: lock held by pid 7\n"),
    ("os-error", 73, "freshroot: /etc/missing: No such file or directory\n"),
])
def test_errors_become_one_message_and_an_exit_code(capsys, command, code, message) -> None:
    assert run(capsys, command) == (code, "", message)


@pytest.mark.parametrize("command", ["config-error", "operation-error", "os-error"])
def test_debug_adds_the_traceback(capsys, command) -> None:
    code, _, err = run(capsys, command, "--debug")
    assert code in (65, 73)
    assert "Traceback (most recent call last)" in err
    assert any(line.startswith("freshroot: /") for line in err.splitlines())  # the message still ends it
    assert f"in {command.replace('-', '_')}\n" in err  # the frames of the handler that raised


def test_a_bug_is_reported_without_traceback(capsys) -> None:
    code, _, err = run(capsys, "bug")
    assert code == 1
    assert "Traceback" not in err
    assert "internal error: RuntimeError: boom" in err
    assert "--debug" in err


def test_a_bug_under_debug_raises_for_the_traceback(capsys) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        run(capsys, "bug", "--debug")


def test_interrupt_exits_130(capsys) -> None:
    assert run(capsys, "interrupted")[:2] == (130, "")


def test_handler_gets_common_options(capsys) -> None:
    assert run(capsys, "ok", "--root", "/mnt") == (0, "ok root=/mnt\n", "")


@pytest.mark.parametrize(("argv", "message", "hint"), [
    (["ok", "--no-such-option"], "unrecognized arguments: --no-such-option", "Try 'freshroot --help'"),
    (["ok", "--root"], "argument --root: expected one argument", "Try 'freshroot ok --help'"),
    (["no-such-command"], "invalid choice: 'no-such-command'", "Try 'freshroot --help'"),
])
def test_usage_errors_exit_65(capsys, argv, message, hint) -> None:
    """Bad arguments are bad input, as a bad declaration is: 65 (docs/exit-codes.md)."""
    with pytest.raises(SystemExit) as e:
        run(capsys, *argv)
    assert e.value.code == 65
    err = capsys.readouterr().err
    assert message in err
    assert hint in err
    assert "Traceback" not in err


def test_no_command_prints_help_and_exits_65(capsys) -> None:
    code, _, err = run(capsys)
    assert code == 65
    assert "usage: freshroot" in err


@pytest.mark.parametrize("argv", [["freshroot", "--help"], ["freshroot-tmpfiles", "--help"]])
def test_entry_points_help(argv: list[str]) -> None:
    exe = VENV_BIN / argv[0]
    if not exe.exists():
        pytest.skip(f"{exe} not installed in this venv")
    proc = subprocess.run([str(exe), *argv[1:]], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"usage: {argv[0]}")


def test_entry_point_usage_error_has_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "freshroot", "--bogus"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 65
    assert "Traceback" not in proc.stderr
    assert "unrecognized arguments: --bogus" in proc.stderr
