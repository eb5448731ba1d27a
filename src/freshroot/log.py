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
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

logger = logging.getLogger("freshroot")

# syslog priorities, as journald reads them from a <N> prefix.
ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7
_LEVELS = {logging.CRITICAL: 2, logging.ERROR: ERR, logging.WARNING: WARNING, logging.INFO: INFO,
           logging.DEBUG: DEBUG}


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


class _Formatter(logging.Formatter):
    """The message alone; with the priority prefix when the handler's stream is the journal."""

    def __init__(self, journal: bool) -> None:
        super().__init__("%(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.journal:
            return text
        priority = _LEVELS.get(record.levelno, INFO)
        return "\n".join(f"<{priority}>{line}" for line in text.split("\n"))


def setup(*, debug: bool = False, quiet: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(is_journal(sys.stderr)))
    logger.handlers[:] = [handler]
    logger.propagate = False
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logger.setLevel(level)


def debug_enabled() -> bool:
    return logger.isEnabledFor(logging.DEBUG)
