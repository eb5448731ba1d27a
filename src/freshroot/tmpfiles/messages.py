"""How parsing reports what it finds, in systemd's words and at systemd's log levels.

systemd-tmpfiles logs at "info" by default: errors, warnings, notices and info lines are shown,
debug lines only with SYSTEMD_LOG_LEVEL=debug (or freshroot's --debug). A line that is bad
configuration raises LineError(invalid=True): it is dropped and the run ends with exit 65. A line
that fails otherwise (a credential that cannot be read, bad base64, a corrupt machine-id) raises
LineError(invalid=False): systemd drops it too, and when the file was named on the command line
the whole run stops before applying anything and exits 1.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass

from freshroot.errors import Location


class Level(enum.IntEnum):
    ERR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a tmpfiles run, at its level, with where it comes from."""
    level: Level
    text: str
    location: Location | None = None

    def __str__(self) -> str:
        # systemd formats log lines into fixed buffers: a located line is cut at 2039 bytes,
        # a plain one at 2047.
        text = self.text if self.location is None else f"{self.location}: {self.text}"
        limit = 2047 if self.location is None else 2039
        raw = text.encode("utf-8", "surrogateescape")
        if len(raw) <= limit:
            return text
        return raw[:limit].decode("utf-8", "surrogateescape")


Reporter = Callable[[Message], None]


def stderr_reporter(max_level: Level = Level.INFO) -> Reporter:
    def report(message: Message) -> None:
        if message.level <= max_level:
            sys.stderr.write(f"{message}\n")

    return report


class LineError(Exception):
    """A line systemd refuses. ``located``: whether systemd prefixes the message with file:line."""

    def __init__(self, text: str, *, invalid: bool = True, located: bool = True,
                 level: Level = Level.ERR) -> None:
        super().__init__(text)
        self.text = text
        self.invalid = invalid
        self.located = located
        self.level = level


class SkipLine(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The line is dropped without being an error (--boot not given, excluded prefix, missing
    credential or copy source, unresolvable specifier); ``message`` is logged if set."""

    def __init__(self, message: str | None = None, level: Level = Level.DEBUG) -> None:
        super().__init__(message or "")
        self.message = message
        self.level = level


# strerror() texts systemd prints with %m for the errnos parsing can meet.
EINVAL = "Invalid argument"
EBADSLT = "Invalid slot"
ENAMETOOLONG = "File name too long"
ERANGE = "Numerical result out of range"
