"""What people see (issue 20): colour only on a terminal (never with NO_COLOR, TERM=dumb or a
pipe), an ASCII tree where the encoding has no box characters, hints that repeat --root and
--config as given, journald priorities when stderr is the journal, --debug naming each step
and action, and progress lines (freshroot.progress) in each mode."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import json
import os
import pty
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from freshroot import hints, log, output
from freshroot.cli import build_parser
from freshroot.progress import Mode, Progress, choose_mode, duration, size

REPO = Path(__file__).resolve().parents[1]


def _root(tmp_path: Path, declaration: str) -> tuple[Path, Path]:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "persist").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    config = tmp_path / "decl.toml"
    config.write_text(declaration)
    return root, config


def _freshroot(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "JOURNAL_STREAM")}
    environ.update(PYTHONPATH=str(REPO / "src"), **env)
    return subprocess.run([sys.executable, "-m", "freshroot", *argv], capture_output=True, text=True,
                          env=environ, check=False, timeout=120)


DECL = '[persist."/persist"]\ndirectories = ["/var/lib/café", "/var/log"]\n'


def test_ascii_encoding_gives_an_ascii_tree_and_no_crash(tmp_path: Path) -> None:
    root, config = _root(tmp_path, DECL)
    proc = _freshroot("plan", "--root", str(root), "--config", str(config), PYTHONIOENCODING="ascii")
    assert "internal error" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "`- " in proc.stdout
    assert "|- " in proc.stdout
    assert "├" not in proc.stdout
    assert "caf\\xe9" in proc.stdout  # what ASCII cannot show is escaped, never a crash
    proc = _freshroot("plan", "--root", str(root), "--config", str(config), "--json", PYTHONIOENCODING="ascii")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # \u escapes: still JSON
    assert "/var/lib/café" in json.dumps(doc, ensure_ascii=False)


def test_utf8_gives_the_box_tree(tmp_path: Path) -> None:
    root, config = _root(tmp_path, DECL)
    proc = _freshroot("plan", "--root", str(root), "--config", str(config), PYTHONIOENCODING="utf-8")
    assert proc.returncode == 0, proc.stderr
    assert "├─ " in proc.stdout
    assert "\x1b[" not in proc.stdout  # a pipe: no colour


def _on_pty(argv: list[str], *, stdout: bool = True, env: dict[str, str] | None = None) -> tuple[int, str]:
    """(exit code, what the command ``argv`` wrote on a pseudo-terminal): its stdout there,
    or its stderr (``stdout=False``; stdout then goes nowhere)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR",)}
    environ.update({"PYTHONPATH": str(REPO / "src"), "TERM": "xterm", **(env or {})})
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # read while it runs: a full pty would block the command
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if stdout:
            proc = subprocess.run(argv, stdout=slave, stderr=subprocess.DEVNULL, env=environ, check=False,
                                  timeout=120)
        else:
            proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=slave, env=environ, check=False,
                                  timeout=120)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return proc.returncode, b"".join(chunks).decode()


def _plan_on_pty(tmp_path: Path, **env: str) -> str:
    root, config = _root(tmp_path, DECL)
    code, out = _on_pty([sys.executable, "-m", "freshroot", "plan", "--root", str(root), "--config", str(config)],
                        env=env)
    assert code == 0
    return out


def test_colour_on_a_terminal_and_never_with_no_color_or_dumb(tmp_path: Path) -> None:
    coloured = _plan_on_pty(tmp_path / "a")
    assert "\x1b[32m+\x1b[0m persist" in coloured  # the mark of a change, in green
    assert "\x1b[1mplan for " in coloured
    assert "\x1b[" not in _plan_on_pty(tmp_path / "b", NO_COLOR="")  # any value, even empty
    assert "\x1b[" not in _plan_on_pty(tmp_path / "c", TERM="dumb")


@pytest.mark.root
def test_apply_status_line_ticks_while_a_step_is_quiet(tmp_path: Path) -> None:
    """A snippet that prints nothing for 2.5 s: the status line still counts the seconds."""
    root, config = _root(tmp_path, '[activation.quiet]\ntext = "sleep 2.5"\n')
    code, err = _on_pty(["unshare", "-m", "--propagation", "private", sys.executable, "-m", "freshroot", "apply",
                         "--root", str(root), "--config", str(config)], stdout=False)
    assert code == 0, err
    draws = [d for d in err.split("\r\x1b[K") if d.startswith("[") and "quiet" in d]
    assert draws[0].endswith("quiet…"), draws  # at the start: no time yet
    # then redrawn, with nothing printed in between: the seconds tick
    assert any(d.endswith("quiet… (1 s)") for d in draws), draws
    assert any(d.endswith("quiet… (2 s)") for d in draws), draws
    assert "quiet:" not in err  # the snippet printed nothing
    assert err.endswith("\r\x1b[K")  # cleared at the end


def test_other_outputs_colour_their_status_words_on_a_terminal_only(tmp_path: Path) -> None:
    """status, audit, generations, config check and deploy's report: the status words in the
    colours plan uses, on a terminal; never with NO_COLOR or through a pipe."""
    root, config = _root(tmp_path, '[persist."/persist"]\ndirectories = ["/var/lib/app"]\n[etc.motd]\ntext = "hi"\n')
    (root / "var/lib/app").mkdir(parents=True)
    (root / "var/lib/app/db").write_text("rows")
    applied = tmp_path / "applied.toml"  # apply needs no mount for this one
    applied.write_text('[etc.motd]\ntext = "hi"\n')
    assert _freshroot("apply", "--root", str(root), "--config", str(applied)).returncode == 0
    common = ["--root", str(root), "--config", str(config)]
    cases: dict[str, tuple[list[str], list[str]]] = {
        "status": (["status", *common], ["\x1b[31;1mconflict\x1b[0m", "\x1b[32mfinished\x1b[0m",
                                         "\x1b[1m/persist\x1b[0m:"]),
        "audit": (["audit", *common], ["\x1b[33;1mnot persisted (lost at the next boot)\x1b[0m"]),
        "generations": (["generations", "--root", str(root), "--config", str(applied)], ["\x1b[32;1m*\x1b[0m"]),
        "config check": (["config", "check", *common], ["\x1b[1m[persist]\x1b[0m: \x1b[32mvalid\x1b[0m"]),
    }
    (root / "persist/var/lib/app").mkdir(parents=True)  # data on both sides: a conflict
    (root / "persist/var/lib/app/db").write_text("storage's")
    if importlib.util.find_spec("pyinfra") is not None:
        fleet = tmp_path / "fleet"
        fleet.mkdir()
        (fleet / "common.toml").write_text('[etc.motd]\ntext = "hi"\n')
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # closed once the socket is: refused
        (fleet / "fleet.toml").write_text(f'[fleet]\nparts = ["common.toml"]\nport = {port}\n\n'
                                          '[hosts.h1]\naddress = "127.0.0.1"\n')
        cases["deploy"] = (["deploy", "plan", "--fleet", str(fleet / "fleet.toml")],
                           ["\x1b[31;1munreachable\x1b[0m", "\x1b[31;1mfailed:\x1b[0m h1"])
    for name, (argv, painted) in cases.items():
        _, coloured = _on_pty([sys.executable, "-m", "freshroot", *argv])
        for text in painted:
            assert text in coloured, (name, text, coloured)
        _, plain = _on_pty([sys.executable, "-m", "freshroot", *argv], env={"NO_COLOR": "1"})
        assert "\x1b[" not in plain, (name, plain)
        assert plain.strip(), name
        piped = _freshroot(*argv)
        assert "\x1b[" not in piped.stdout, (name, piped.stdout)
        # the same words, without the colour: the columns stay where they were
        assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).replace("\r\n", "\n") == plain.replace("\r\n", "\n") \
            or name == "deploy", (name, coloured, plain)


def test_status_line_ticker_stops_when_closed() -> None:
    """After a step, or a run cut short (close): the ticker draws nothing more."""
    from freshroot.plan.action import Step
    from freshroot.plan.progress import TerminalProgress

    out = io.StringIO()
    progress = TerminalProgress(out, tty=True, interval=0.01)
    progress.start(Step("slow", lambda ctx: ()), 0, 1)
    progress.started -= 5  # as if it had run 5 s
    time.sleep(0.1)
    assert f"[1/1] slow{progress.ellipsis} (5 s)" in out.getvalue()
    progress.close()
    drawn = out.getvalue()
    assert drawn.endswith("\r\x1b[K")
    time.sleep(0.05)
    assert out.getvalue() == drawn  # nothing after the close


def test_colour_wanted() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    env = dict(os.environ)
    try:
        os.environ.pop("NO_COLOR", None)
        os.environ["TERM"] = "xterm"
        assert output.colour_wanted(Tty())
        assert not output.colour_wanted(io.StringIO())
        os.environ["NO_COLOR"] = "1"
        assert not output.colour_wanted(Tty())
    finally:
        os.environ.clear()
        os.environ.update(env)
    assert output.paint("x", "red", False) == "x"
    assert output.paint("x", "red+bold", True) == "\x1b[31;1mx\x1b[0m"


def test_hints_repeat_root_and_config_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = _root(tmp_path, '[persist."/persist"]\ndirectories = ["/var/lib/app"]\n')
    (root / "var/lib/app").mkdir(parents=True)
    (root / "var/lib/app/db").write_text("rows")
    monkeypatch.chdir(tmp_path)
    proc = _freshroot("status", "--root", "root", "--config", "decl.toml")
    # pasted as it is, from where it was typed: the relative --root as given, not made absolute
    assert "run `freshroot migrate /var/lib/app --root root --config decl.toml`" in proc.stdout, proc.stdout
    proc = _freshroot("status", "--root=root", "--config", "decl.toml")
    assert "run `freshroot migrate /var/lib/app --root root --config decl.toml`" in proc.stdout, proc.stdout


def _hints(text: str) -> list[str]:
    return re.findall(r"`(freshroot [^`]+)`", text)


def _pasted(hint: str, cwd: Path) -> argparse.Namespace:
    """The hint as the shell and freshroot's parser read it, from where it was typed."""
    argv = shlex.split(hint)
    assert argv[0] == "freshroot"
    here = os.getcwd()
    os.chdir(cwd)  # --root is made absolute against the working directory, as when typed
    try:
        return build_parser(argv[1:]).parse_args(argv[1:])
    except SystemExit as e:  # a usage error: the hint does not parse
        pytest.fail(f"{hint!r} does not parse ({e})")
    finally:
        os.chdir(here)


def test_hints_parse_when_pasted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each hint, pasted back, parses, with the --root/--config/--generations given and only
    those its command takes."""
    root, _ = _root(tmp_path, '[persist."/persist"]\ndirectories = ["/var/lib/app"]\n')
    (root / "var/lib/app").mkdir(parents=True)
    (root / "var/lib/app/db").write_text("rows")
    (tmp_path / "my decl.toml").write_text('[persist."/persist"]\ndirectories = ["/var/lib/app"]\n')
    monkeypatch.chdir(tmp_path)
    # status: `migrate PATH`, with --root= and an abbreviated --config as argparse reads them
    proc = _freshroot("status", "--root=root", "--conf", "my decl.toml")
    [hint] = _hints(proc.stdout)
    assert hint == "freshroot migrate /var/lib/app --root root --config 'my decl.toml'"
    args = _pasted(hint, tmp_path)
    assert (args.handler, args.paths, args.root, args.config) == (
        "freshroot.persist.handlers:migrate", ["/var/lib/app"], str(root), ["my decl.toml"])
    # rollback to a generation that does not exist: `generations` with its --generations too
    proc = _freshroot("rollback", "--to", "9", "--root", "root", "--config", "my decl.toml", "--generations",
                      "/gens")
    assert proc.returncode == 65, proc.stderr
    [hint] = _hints(proc.stderr)
    args = _pasted(hint, tmp_path)
    assert (args.handler, args.root, args.config, args.generations) == (
        "freshroot.generations.handlers:generations", str(root), ["my decl.toml"], "/gens")
    # disk plan: `facts` takes neither --config nor --root; `disk plan` keeps --config
    (tmp_path / "disk.toml").write_text('[disk]\n[disk.partitions.root]\ntype = "root"\nformat = "ext4"\n')
    proc = _freshroot("disk", "plan", "--config", "disk.toml", "--device", "/dev/sda")
    assert proc.returncode == 65, proc.stderr
    [hint] = _hints(proc.stderr)
    assert hint == "freshroot facts"
    assert _pasted(hint, tmp_path).handler == "freshroot.facts.handlers:facts"
    output.remember_invocation(["disk", "apply", "--config", "disk.toml", "--mount-root", "/mnt"])
    try:
        args = _pasted(hints.command("disk", "plan"), tmp_path)
        assert (args.handler, args.config) == ("freshroot.disk.handlers:plan", ["disk.toml"])
        output.remember_invocation(["apply", "--confirm-timeout", "60", "--root", "/mnt", "--config", "-"])
        assert hints.command("confirm") == "freshroot confirm --root /mnt --config -"
        assert hints.command("deploy", "apply", "--fleet", "f.toml") == "freshroot deploy apply --fleet f.toml"
    finally:
        output.remember_invocation([])


def test_every_hinted_command_parses_with_the_options_given(tmp_path: Path) -> None:
    """Every ``command(...)`` in the sources names a command that parses, with --root,
    --config and --generations repeated where it takes them (a path stands in for the words
    only known at run time)."""
    calls: list[tuple[str, list[str]]] = []
    for path in sorted((REPO / "src/freshroot").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "command"
                    and "from freshroot.hints import command" in path.read_text()
                    and not any(isinstance(a, ast.Starred) for a in node.args)):
                words = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else "/var/lib/x"
                         for a in node.args]
                calls.append((f"{path.relative_to(REPO)}:{node.lineno}", words))
    assert len(calls) >= 8, calls
    given = ["--root", str(tmp_path), "--config", "c.toml", "--generations", "/gens"]
    for where, words in calls:
        output.remember_invocation(["rollback", *given])
        try:
            hint = hints.command(*words)
        finally:
            output.remember_invocation([])
        args = _pasted(hint, tmp_path)
        if hasattr(args, "root"):
            assert args.root == str(tmp_path), (where, hint)
        if hasattr(args, "config"):
            assert args.config == ["c.toml"], (where, hint)


def test_command_quotes_for_a_shell() -> None:
    output.remember_invocation(["status", "--root", "/mnt/my root", "--config=a b.toml", "--", "--root", "x"])
    try:
        assert hints.command("migrate", "/var/lib/it's") == (
            "freshroot migrate '/var/lib/it'\"'\"'s' --root '/mnt/my root' --config 'a b.toml'")
    finally:
        output.remember_invocation([])
    assert hints.command("undo") == "freshroot undo"


def test_debug_logs_each_step_and_action(tmp_path: Path) -> None:
    root, config = _root(tmp_path, '[persist."/persist"]\ndirectories = ["/var/log"]\n')
    proc = _freshroot("plan", "--debug", "--root", str(root), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert any(line.startswith("step persist (") and "after" in line for line in lines), lines
    assert "  plan: create mount point /var/log (0755 0:0)" in lines
    assert any(line.startswith("step persist: changed in ") for line in lines), lines
    quiet = _freshroot("plan", "--root", str(root), "--config", str(config))
    assert "step persist" not in quiet.stderr
    # apply: each action as it is applied, and what failed
    (root / "etc/issue").mkdir()  # a directory where /etc/issue is declared: that action fails
    applied = tmp_path / "applied.toml"
    applied.write_text('[etc.motd]\ntext = "hi"\n[etc.issue]\ntext = "x"\n')
    proc = _freshroot("apply", "--debug", "--root", str(root), "--config", str(applied))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert "  apply: write /etc/motd (0644 root:root)" in lines, lines
    assert any(line.startswith("  failed: ") and "/etc/issue" in line for line in lines), lines
    assert any(line.startswith("step etc: failed in ") for line in lines), lines
    # the persist commands run their actions outside the executor: logged the same way
    (root / "var/lib/app").mkdir(parents=True)
    (root / "var/lib/app/db").write_text("rows")
    (tmp_path / "app.toml").write_text('[persist."/persist"]\ndirectories = ["/var/lib/app"]\n')
    proc = _freshroot("migrate", "--debug", "/var/lib/app", "--root", str(root), "--config", str(tmp_path / "app.toml"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert any(line.startswith("  apply: ") and "/var/lib/app" in line for line in lines), lines


# --- journald -------------------------------------------------------------------------------

def test_priorities_only_on_the_journal_stream(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    with open(path, "w") as stream:
        st = os.fstat(stream.fileno())
        env = dict(os.environ)
        try:
            os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            assert log.is_journal(stream)
            log.error("storage /persist is missing\n  hint: mount it", stream)
            log.warning("degraded", stream)
            log.info("fine", stream)
            other = io.StringIO()
            log.error("not the journal", other)
            os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"  # another stream is the journal
            log.error("plain", stream)
        finally:
            os.environ.clear()
            os.environ.update(env)
    assert path.read_text().splitlines() == [
        "<3>storage /persist is missing", "<3>  hint: mount it", "<4>degraded", "<6>fine", "plain"]
    assert other.getvalue() == "not the journal\n"


def test_error_of_a_command_has_err_priority_in_the_journal(tmp_path: Path) -> None:
    """A failure of any command: stderr is the journal, the message gets <3>; warnings <4>."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[persist."/persist"]\ndirectories = "x"\n')
    path = tmp_path / "journal"
    (tmp_path / "root").mkdir()  # the declaration on the host, outside the root: named as a host path
    with open(path, "w") as stream:
        st = os.fstat(stream.fileno())
        environ = {**os.environ, "PYTHONPATH": str(REPO / "src"), "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = subprocess.run([sys.executable, "-m", "freshroot", "config", "check", "--config", str(bad),
                               "--root", str(tmp_path / "root")], stderr=stream, stdout=subprocess.PIPE, env=environ,
                              check=False)
    assert proc.returncode == 65
    lines = path.read_text().splitlines()
    assert lines
    assert all(line.startswith("<3>") for line in lines), lines
    assert lines[0].startswith(f"<3>freshroot: {bad}:2:")


def test_logger_messages_get_their_priority(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    code = ("import sys; from freshroot import log; log.setup(); log.logger.warning('w'); log.logger.error('e');"
            "log.logger.info('i')")
    with open(path, "w") as stream:
        st = os.fstat(stream.fileno())
        environ = {**os.environ, "PYTHONPATH": str(REPO / "src"), "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        subprocess.run([sys.executable, "-c", code], stderr=stream, env=environ, check=True)
    assert path.read_text().splitlines() == ["<4>w", "<3>e", "<6>i"]


# --- progress --------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm")
    assert choose_mode(Tty()) is Mode.TERMINAL
    assert choose_mode(Tty(), json=True) is Mode.OFF
    assert choose_mode(io.StringIO()) is Mode.LINES
    monkeypatch.setenv("TERM", "dumb")
    assert choose_mode(Tty()) is Mode.LINES


def test_progress_lines_and_status() -> None:
    clock = Clock()
    stream = io.StringIO()
    p = Progress(Mode.LINES, stream, clock=clock)
    with p.phase("copy /var/lib/app", entries=10, nbytes=100 << 20):
        p.advance(4, 40 << 20)
        clock.now += 2
        assert p.status() == "copy /var/lib/app: 40.0 MiB of 100.0 MiB, 4 of 10 entries, 20.0 MiB/s, 3.0 s left"
        p.advance(6, 60 << 20)
        clock.now += 3
    assert stream.getvalue() == "copy /var/lib/app: 100.0 MiB, 10 entries in 5.0 s (20.0 MiB/s)\n"
    off = io.StringIO()
    with Progress(Mode.OFF, off, clock=clock).phase("x") as q:
        q.advance(1, 1)
    assert off.getvalue() == ""


def test_progress_on_a_terminal_redraws_one_line_and_clears_it() -> None:
    stream = io.StringIO()
    p = Progress(Mode.TERMINAL, stream, interval=0.01)
    with p.phase("stage demo_1.0.raw"):
        p.advance(1, 5)
    text = stream.getvalue()
    assert text.startswith("\r\x1b[Kstage demo_1.0.raw: 0 B")
    assert text.endswith("\r\x1b[K")  # cleared: the command's own output starts on a clean line
    assert "\n" not in text


def test_sizes_and_durations() -> None:
    assert size(0) == "0 B"
    assert size(1536) == "1.5 KiB"
    assert size(1 << 30) == "1.0 GiB"
    assert size(5 << 40) == "5.0 TiB"
    assert duration(0.42) == "0.4 s"
    assert duration(42) == "42 s"
    assert duration(185) == "3 min 05 s"
    assert duration(3720) == "1 h 02 min"
