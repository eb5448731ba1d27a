"""run(): argv lists, explicit environment, copy-pasteable --debug log, readable failures."""

from __future__ import annotations

import subprocess

import pytest

from freshroot import log
from freshroot.errors import CommandError
from freshroot.run import BASE_ENV, format_command, run


def test_output_and_environment_are_explicit(monkeypatch) -> None:
    monkeypatch.setenv("LEAK", "from the parent")
    r = run(["sh", "-c", 'printf "%s|%s" "$LEAK" "$LC_ALL"'])
    assert r.stdout == "|C.UTF-8"  # nothing inherited by accident
    r = run(["sh", "-c", 'printf %s "$X"'], env={**BASE_ENV, "X": "given"})
    assert r.stdout == "given"


def test_odd_bytes_survive() -> None:
    r = run(["printf", "\\377\\n"])
    assert r.stdout.encode("utf-8", "surrogateescape") == b"\xff\n"
    assert run(["cat"], input="caf\udce9").stdout == "caf\udce9"


def test_failure_names_the_command_and_its_last_stderr_lines() -> None:
    with pytest.raises(CommandError) as e:
        run(["sh", "-c", "for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; exit 3"])
    err = e.value
    assert err.returncode == 3
    assert err.exit_code == 73
    msg = str(err)
    assert msg.startswith("sh -c 'for i in")
    assert "exited with status 3" in msg
    assert "line7" in msg
    assert "line2" not in msg  # only the tail
    assert run(["false"], check=False).returncode == 1


def test_missing_program_is_a_readable_error() -> None:
    with pytest.raises(CommandError, match="no-such-program-x: command not found"):
        run(["no-such-program-x"])


def test_timeout_is_a_readable_error() -> None:
    with pytest.raises(CommandError, match=r"timed out after 0\.2 s"):
        run(["sleep", "5"], timeout=0.2)


def test_debug_log_is_copy_pasteable(capsys) -> None:
    """The logged line, pasted into a shell with an empty environment, does the same thing."""
    log.setup(debug=True)
    try:
        arg = "a b'c\"$(touch /nonexistent)"
        first = run(["sh", "-c", 'printf "%s|" "$1"; env | sort', "sh", arg],
                    env={**BASE_ENV, "Q": "it's \"quoted\" $HOME"})
        line = capsys.readouterr().err.strip()
    finally:
        log.setup(debug=False)
    assert line.startswith("+ env -i ")
    pasted = subprocess.run(["sh", "-c", line[2:]], capture_output=True, text=True, check=True, env={})
    assert pasted.stdout == first.stdout
    assert first.stdout.startswith(arg + "|")
    assert "PATH=" in first.stdout
    assert "Q=it's \"quoted\" $HOME" in first.stdout


def test_format_command_spells_out_the_whole_environment() -> None:
    assert format_command(["ls", "a b"]) == "ls 'a b'"
    assert format_command(["ls"], BASE_ENV) == "ls"
    line = format_command(["ls"], {"PATH": "/bin", "FOO": "1"})
    assert line == "env -i FOO=1 PATH=/bin ls"
