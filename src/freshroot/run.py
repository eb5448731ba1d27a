"""The one subprocess wrapper.

Every external program freshroot starts goes through :func:`run`: an argv list (never a
shell string), an explicit environment, the command logged under --debug in a form that
can be pasted into a shell, and a failure turned into a readable CommandError.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from freshroot.errors import CommandError
from freshroot.log import logger

# The environment a child gets unless the caller passes one: enough to find programs and
# speak plain ASCII, nothing inherited by accident (LD_PRELOAD, PYTHONPATH, a user's IFS...).
BASE_ENV: Mapping[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
}


@dataclass(frozen=True, slots=True)
class Result:
    """What a finished command gave."""
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def format_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The command as a line that can be pasted into a shell and runs the same way.

    An environment other than BASE_ENV is spelled out whole after ``env -i``: listing only
    the differences would drop PATH and LC_ALL from the pasted command.
    """
    prefix = ""
    if env is not None and dict(env) != dict(BASE_ENV):
        prefix = "env -i " + "".join(f"{k}={shlex.quote(v)} " for k, v in sorted(env.items()))
    return prefix + shlex.join(argv)


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | bytes | None = None,  # noqa: A002 - mirrors subprocess.run
    cwd: str | None = None,
    capture: bool = True,
    timeout: float | None = None,
) -> Result:
    """Run ``argv`` and return what it printed.

    ``env`` replaces the environment entirely; None means BASE_ENV. With ``check`` a
    non-zero exit raises CommandError naming the command and its last stderr lines.
    Output is decoded as UTF-8 with surrogateescape so odd bytes survive a round trip.
    """
    args = tuple(os.fspath(a) for a in argv)
    environment = dict(BASE_ENV if env is None else env)
    logger.debug("+ %s", format_command(args, environment))
    data = input.encode("utf-8", "surrogateescape") if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            args,
            env=environment,
            input=data,
            cwd=cwd,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            stdin=None if data is not None else subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        raise CommandError(
            f"{args[0]}: command not found (install it, or check PATH)",
            argv=args,
            returncode=127,
            stderr=str(e),
        ) from e
    except subprocess.TimeoutExpired as e:
        raise CommandError(
            f"{format_command(args)}: timed out after {timeout} s",
            argv=args,
            returncode=-1,
            stderr="",
        ) from e
    out = (proc.stdout or b"").decode("utf-8", "surrogateescape")
    err = (proc.stderr or b"").decode("utf-8", "surrogateescape")
    if check and proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-5:])
        detail = f":\n  {tail.replace(chr(10), chr(10) + '  ')}" if tail else ""
        raise CommandError(
            f"{format_command(args)}: exited with status {proc.returncode}{detail}",
            argv=args,
            returncode=proc.returncode,
            stderr=err,
        )
    return Result(args, proc.returncode, out, err)


def stream(
    argv: Sequence[str],
    on_line: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    new_session: bool = False,
    on_start: Callable[[int], None] | None = None,
) -> int:
    """Run ``argv`` with stdout and stderr merged, handing each line to ``on_line`` as it
    comes; return the exit status (no CommandError: the caller decides what a status means).

    With ``new_session`` the child leads a session and process group of its own (its pid is
    the group id), so everything it starts can be found and stopped together, and a Ctrl-C
    on the terminal reaches freshroot, which decides. ``on_start`` gets the pid at once; the
    child's stdin is then a pipe that carries one line once ``on_start`` has returned, and
    ends there. A child that must not act before its pid is recorded (a journal that stops a
    killed run's leftovers) reads that line first: if freshroot dies before, it reads EOF.
    (Not prctl(PR_SET_PDEATHSIG): it needs a preexec_fn, and that makes every spawn a full
    fork costing ~10 ms instead of a vfork.)
    """
    args = tuple(os.fspath(a) for a in argv)
    environment = dict(BASE_ENV if env is None else env)
    # Pasted into a shell, the line gives the child the one line it waits for (``echo |``)
    # and, as here, no other input: it runs instead of waiting on the terminal.
    logger.debug("+ %s%s", "echo | " if on_start is not None else "", format_command(args, environment))
    try:
        proc = subprocess.Popen(
            args, env=environment, cwd=cwd, stdin=subprocess.DEVNULL if on_start is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=new_session,
        )
    except FileNotFoundError as e:
        raise CommandError(f"{args[0]}: command not found (install it, or check PATH)",
                           argv=args, returncode=127, stderr=str(e)) from e
    assert proc.stdout is not None
    try:
        if on_start is not None:
            on_start(proc.pid)
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError), proc.stdin:
                proc.stdin.write(b"\n")
        with proc.stdout:
            for raw in proc.stdout:
                on_line(raw.decode("utf-8", "surrogateescape").rstrip("\n"))
        return proc.wait()
    except BaseException:
        # Interrupted (Ctrl-C, an error in on_line): do not leave the child running on its own.
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if proc.poll() is None:
            import signal

            try:
                if new_session:
                    os.killpg(proc.pid, signal.SIGTERM)
                else:
                    proc.terminate()
            except ProcessLookupError:
                pass
            proc.wait()
        raise


def spawn_detached(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` in a session of its own, with /dev/null for stdin, stdout and stderr,
    and return its pid without waiting. It outlives freshroot and the login that started it:
    no controlling terminal (no SIGHUP when an SSH session ends), and nothing of the SSH
    channel held open (which would keep the remote command from finishing). The caller
    records the pid with its start time to stop it later."""
    args = tuple(os.fspath(a) for a in argv)
    environment = dict(BASE_ENV if env is None else env)
    logger.debug("+ %s &", format_command(args, environment))
    try:
        proc = subprocess.Popen(args, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, cwd="/")
    except FileNotFoundError as e:
        raise CommandError(f"{args[0]}: command not found (install it, or check PATH)",
                           argv=args, returncode=127, stderr=str(e)) from e
    # Not waited for: once freshroot exits, init (or the subreaper) reaps it. Popen's
    # finaliser would otherwise warn about a child still running.
    proc.returncode = 0
    return proc.pid
