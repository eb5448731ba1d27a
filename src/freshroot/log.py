"""Messages for people: plain lines on stderr, more under --debug, and journald's priorities
when the stream is the journal.

A service's stdout and stderr connected to the journal are plain streams, so journald logs
every line at the unit's default priority (info) unless the line starts with ``<N>``, the
syslog priority (sd-daemon(3)). systemd tells a process which of its streams is the journal
in ``JOURNAL_STREAM`` (``device:inode`` of that stream, systemd.exec(5)); when the stream a
message goes to is that one, each of its lines gets the prefix: ``<3>`` (err) for failures
and a storage that is missing, ``<4>`` (warning) for degraded paths, ``<6>`` (info) for the
rest, ``<7>`` (debug). On a terminal, a pipe or a file, nothing is added. So
``journalctl -p err`` shows exactly what failed.

The logger is freshroot's own, not the standard library's ``logging``: that package (and the
``traceback``, ``linecache`` and ``tokenize`` it loads) is a fifth of the modules
``freshroot apply --boot`` would import, paid at every boot. It has what freshroot uses:
four levels, %-style arguments, one stream (stderr, looked up when a message is written).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

# syslog priorities, as journald reads them from a <N> prefix; the logger's levels are these.
ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7


def is_journal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is the journal stream systemd named in JOURNAL_STREAM."""
    wanted = os.environ.get("JOURNAL_STREAM", "")
    if not wanted or stream is None:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return False  # a StringIO, a closed stream: not the journal
    return wanted == f"{st.st_dev}:{st.st_ino}"


def prefixed(text: str, priority: int, stream: TextIO | None) -> str:
    """``text`` with ``<priority>`` before each of its lines when ``stream`` is the journal
    (journald takes each line as its own message)."""
    if not is_journal(stream):
        return text
    return "\n".join(f"<{priority}>{line}" for line in text.split("\n"))


def say(text: str, priority: int = INFO, stream: TextIO | None = None) -> None:
    """Write one message (one or more lines) on ``stream`` (stderr), at ``priority``."""
    out = stream if stream is not None else sys.stderr
    out.write(prefixed(text, priority, out) + "\n")
    out.flush()


def error(text: str, stream: TextIO | None = None) -> None:
    say(text, ERR, stream)


def warning(text: str, stream: TextIO | None = None) -> None:
    say(text, WARNING, stream)


def info(text: str, stream: TextIO | None = None) -> None:
    say(text, INFO, stream)


class Logger:
    """Messages at a level (the syslog priorities above: lower is more severe) written to
    stderr as they come, when the level is enabled. Before :func:`setup` only warnings and
    errors are written, as the standard library does for a logger nobody configured."""

    def __init__(self) -> None:
        self.threshold = WARNING

    def enabled(self, priority: int) -> bool:
        return priority <= self.threshold

    def log(self, priority: int, message: str, *args: object, exc_info: BaseException | None = None) -> None:
        if priority > self.threshold:
            return
        text = message % args if args else message
        if exc_info is not None:
            import traceback  # only under --debug, for a failed step's traceback

            text += "\n" + "".join(traceback.format_exception(exc_info)).rstrip("\n")
        say(text, priority)

    def debug(self, message: str, *args: object, exc_info: BaseException | None = None) -> None:
        self.log(DEBUG, message, *args, exc_info=exc_info)

    def info(self, message: str, *args: object) -> None:
        self.log(INFO, message, *args)

    def warning(self, message: str, *args: object) -> None:
        self.log(WARNING, message, *args)

    def error(self, message: str, *args: object) -> None:
        self.log(ERR, message, *args)


logger = Logger()


def setup(*, debug: bool = False, quiet: bool = False) -> None:
    logger.threshold = DEBUG if debug else WARNING if quiet else INFO


def debug_enabled() -> bool:
    return logger.enabled(DEBUG)
