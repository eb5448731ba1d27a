"""The exceptions users see.

Every error freshroot raises on purpose is a FreshrootError. The one handler in
``freshroot.cli.report`` turns it into ``file:line: message`` on stderr and an exit
code; a traceback is printed only under --debug. Exit codes (docs/exit-codes.md, sysexits.h
as systemd-tmpfiles uses them): 65 for a bad declaration or bad arguments, 73 for an operation
that failed outside any step, 1 for a failed step (freshroot-tmpfiles: systemd-tmpfiles' own).
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_DATAERR = 65  # bad configuration
EXIT_CANTCREAT = 73  # a file system operation failed


class Location:
    """Where a value came from: a file and, where known, a 1-based line. Immutable.

    Written by hand rather than as a frozen dataclass: this module is imported at every
    start, and ``dataclasses`` costs ~8 ms of start-up (it imports inspect).
    """

    __slots__ = ("file", "line")
    file: str
    line: int | None

    def __init__(self, file: str, line: int | None = None) -> None:
        object.__setattr__(self, "file", file)
        object.__setattr__(self, "line", line)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Location is immutable: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Location is immutable: cannot delete {name}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        return (self.file, self.line) == (other.file, other.line)

    def __hash__(self) -> int:
        return hash((self.file, self.line))

    def __repr__(self) -> str:
        return f"Location(file={self.file!r}, line={self.line!r})"

    def __reduce__(self) -> tuple[type[Location], tuple[str, int | None]]:
        return (Location, (self.file, self.line))

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


def os_error_message(error: OSError, about: str | None = None) -> str:
    """``path: what went wrong`` for an OSError, without Python's ``[Errno N]`` noise.

    ``about``: the path the message is about, as the root sees it, when the caller knows it
    (freshroot.rootpaths): an error of a call on a directory fd carries only the entry's name,
    which ``about`` then replaces (``/var/lib/x/db: Permission denied``, not ``/var/lib/x/db:
    db: Permission denied``); a file name with a ``/`` in it says more and is kept."""
    what = error.strerror or str(error)
    name = error.filename
    if isinstance(name, bytes):
        name = name.decode("utf-8", "backslashreplace")
    if about is not None:
        return f"{about}: {what}" if name is None or "/" not in str(name) else f"{about}: {name}: {what}"
    return what if name is None else f"{name}: {what}"


class FreshrootError(Exception):
    """Base of all errors meant for people. ``str()`` gives the full message."""

    exit_code = EXIT_FAILURE

    def __init__(
        self, message: str, *, location: Location | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        text = self.message if self.location is None else f"{self.location}: {self.message}"
        return text if self.hint is None else f"{text}\n  hint: {self.hint}"


class ConfigError(FreshrootError):
    """The declaration or a tmpfiles.d line is wrong. Exit 65."""

    exit_code = EXIT_DATAERR


class DeclarationError(ConfigError):
    """Every problem found in a declaration at once (the shared check reports them all).

    ``str()`` is one ``file:line: message`` per line; ``errors`` holds each one."""

    errors: list[ConfigError]

    def __init__(self, errors: list[ConfigError]) -> None:
        flat: list[ConfigError] = []
        for e in errors:
            flat += e.errors if isinstance(e, DeclarationError) else [e]
        super().__init__(flat[0].message if flat else "the declaration is not valid",
                         location=flat[0].location if flat else None, hint=flat[0].hint if flat else None)
        self.errors = flat

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return str(self.errors[0])
        lines = [str(e) for e in self.errors]
        return "\n".join(lines) + f"\n{len(self.errors)} problems in the declaration; nothing was changed"


class Problems:
    """The errors of a section's entries, gathered so that each bad entry is said, not only the
    first: ``with problems:`` around one entry keeps its ConfigError and goes on with the next;
    :meth:`raise_all` raises them together (DeclarationError) once every entry was read."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def __enter__(self) -> Problems:
        return self

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> bool:
        if isinstance(error, ConfigError):
            self.errors.append(error)
            return True
        return False

    def raise_all(self) -> None:
        if self.errors:
            raise DeclarationError(self.errors)


class OperationError(FreshrootError):
    """Applying something to the file system failed. Exit 73."""

    exit_code = EXIT_CANTCREAT


class UnsafePathError(OperationError):
    """A path walk met a transition an unprivileged user could have planted."""


class CommandError(OperationError):
    """A subprocess failed. Carries the argv and what it printed."""

    def __init__(self, message: str, *, argv: tuple[str, ...], returncode: int, stderr: str) -> None:
        super().__init__(message)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class UsageError(FreshrootError):
    """Command-line arguments that make no sense together. Exit 65, as a bad declaration:
    both are input the command refuses before it changes anything (docs/exit-codes.md)."""

    exit_code = EXIT_DATAERR


class TmpfilesUsageError(UsageError):
    """Arguments systemd-tmpfiles refuses: its exit code (1), which freshroot-tmpfiles keeps."""

    exit_code = EXIT_FAILURE
