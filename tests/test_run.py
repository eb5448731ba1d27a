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


def test_stream_child_can_wait_until_on_start_has_returned(tmp_path) -> None:
    # The journal records a snippet's process group in on_start; a child that reads its start
    # line first cannot act before that (else a kill -9 in between leaves it unrecorded).
    import time

    from freshroot.run import stream

    mark = tmp_path / "acted"
    seen: list[bool] = []

    def on_start(pid: int) -> None:
        time.sleep(0.3)  # a descheduled parent: the child would act in the meantime
        seen.append(mark.exists())

    lines: list[str] = []
    status = stream(["sh", "-c", f'read -r _ && touch {mark} && echo "stdin then: $(cat | wc -c)"'],
                    lines.append, on_start=on_start)
    assert status == 0
    assert seen == [False]
    assert mark.exists()
    assert lines == ["stdin then: 0"]  # the start line only, then EOF


def test_stream_child_reads_eof_when_the_parent_is_killed_before_on_start_returns(tmp_path) -> None:
    import sys
    import time

    mark, eof = tmp_path / "acted", tmp_path / "eof"
    parent = (
        "import os, signal\n"
        "from freshroot.run import stream\n"
        f"child = 'read -r _ || {{ touch {eof}; exit 125; }}; touch {mark}'\n"
        "stream(['sh', '-c', child], print, new_session=True,\n"
        "       on_start=lambda pid: os.kill(os.getpid(), signal.SIGKILL))\n"
    )
    done = subprocess.run([sys.executable, "-c", parent], check=False)
    assert done.returncode == -9
    deadline = time.monotonic() + 10
    while not (eof.exists() or mark.exists()):
        assert time.monotonic() < deadline, "the orphaned child neither read EOF nor acted"
        time.sleep(0.01)
    assert eof.exists()
    assert not mark.exists()


def test_debug_log_of_a_snippet_runs_when_pasted(capsys) -> None:
    """A child that first reads the line freshroot sends once its pid is recorded (a snippet)
    is logged so that the pasted line gives it that line: it runs instead of waiting on stdin."""
    from freshroot.run import stream

    log.setup(debug=True)
    try:
        lines: list[str] = []
        status = stream(["bash", "-c", "read -r _ || exit 125; echo ran"], lines.append, on_start=lambda pid: None)
        logged = capsys.readouterr().err.strip()
    finally:
        log.setup(debug=False)
    assert (status, lines) == (0, ["ran"])
    assert logged.startswith("+ echo | ")
    pasted = subprocess.run(["sh", "-c", logged[2:]], capture_output=True, text=True, timeout=20, check=False,
                            stdin=subprocess.DEVNULL, env={})
    assert (pasted.returncode, pasted.stdout) == (0, "ran\n")
