"""What the command line prints, in one place: JSON documents (each with the schema's
"version", docs/json.md), the JSON error document, colour, the tree's characters, and the
commands hints tell people to run.

- JSON: :func:`print_json` writes a command's document with ``"version": JSON_VERSION``
  first; :func:`error_document` is what ``--json`` gets on stdout when the command fails
  before it has a document (the exit code, the message, every problem's file:line).
- Colour: on a terminal only, never with ``NO_COLOR`` set (no-color.org) or ``TERM=dumb``.
- The tree: box-drawing characters where the stream's encoding has them, ASCII otherwise
  (``PYTHONIOENCODING=ascii``, a C locale).
- Hints: the command line is kept here (:func:`remember_invocation`) for
  :func:`freshroot.hints.command`, which spells a freshroot command with the ``--root`` and
  ``--config`` the user gave, as given, so that it can be pasted as it is.
- Paths: one style (docs/json.md, "Paths in output" in docs/activation.md). A path inside the
  run's root (set once by the CLI from ``--root``) is shown as the root sees it,
  ``/var/lib/app`` for ``--root /mnt`` (freshroot.rootpaths); the root itself is named once:
  by the text output's head line, by the JSON documents' ``root`` (added here to every
  document of a command that takes ``--root``), or by the error's ``root:`` line.
"""

from __future__ import annotations

import os
import sys

# Imported by the planner, which the generator runs at boot: nothing here costs start-up
# (json and shlex are imported where used; typing only by the type checker).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, TextIO

    from freshroot.errors import FreshrootError

# The version of every --json document's schema (docs/json.md). Raised when a key changes
# meaning or goes away; keys may be added without raising it.
JSON_VERSION = 1


def document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with ``"version"`` as its first key, then, for a command that takes ``--root``,
    ``"root"``: the root its paths are inside."""
    from freshroot.rootpaths import run_root

    root = run_root()
    named = {"root": root} if root is not None else {}
    return {"version": JSON_VERSION, **named, **{k: v for k, v in doc.items() if k not in ("version", "root")}}


def print_json(doc: Mapping[str, Any], stream: TextIO | None = None, *, indent: int | None = 2) -> None:
    """Write one command's JSON document, versioned, on stdout."""
    import json

    out = stream if stream is not None else sys.stdout
    # \u escapes where the stream cannot write every character (PYTHONIOENCODING=ascii): still JSON.
    ascii_only = not unicode_ok(out)
    out.write(json.dumps(document(doc), indent=indent, ensure_ascii=ascii_only, default=str) + "\n")


def error_document(message: str, exit_code: int, problems: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """What --json prints on stdout when the command failed (besides the message on stderr)."""
    return document({"ok": False, "error": {"exit_code": exit_code, "message": message,
                                            "problems": list(problems)}})


def failure_document(error: FreshrootError) -> dict[str, Any]:
    """The error document of ``error``: every problem of a DeclarationError, with its file
    and line, or the one error."""
    from freshroot.errors import DeclarationError

    each = error.errors if isinstance(error, DeclarationError) else [error]
    problems = [{"message": e.message, "file": e.location.file if e.location else None,
                 "line": e.location.line if e.location else None, "hint": e.hint} for e in each]
    return error_document(str(error), error.exit_code, problems)


# --- colour ------------------------------------------------------------------------------

_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


def colour_wanted(stream: TextIO) -> bool:
    """Colour on ``stream``: a terminal, NO_COLOR unset (any value, even empty, turns it off),
    TERM not dumb."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM", "") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, style: str, on: bool) -> str:
    """``text`` in ``style`` (a name of _SGR, or several joined by '+') when ``on``."""
    if not on or not text or not style:
        return text
    codes = ";".join(_SGR[s] for s in style.split("+"))
    return f"\x1b[{codes}m{text}\x1b[0m"


# Each status word in one colour wherever it is shown (plan and apply, status, audit,
# generations, deploy, config check): green done or fine, dim nothing to do, yellow waiting
# for something or left out, red wrong.
STATUS_STYLES = {
    "changed": "green", "ok": "green", "valid": "green", "confirmed": "green", "finished": "green",
    "unchanged": "dim", "no change": "dim", "superseded": "dim",
    "pending": "yellow", "waiting": "yellow", "skipped": "yellow", "running": "yellow", "not run": "yellow",
    "failed": "red+bold", "conflict": "red+bold", "unreachable": "red+bold", "killed": "red+bold",
    "rolled-back": "red",
}


def status_word(word: str, on: bool, width: int = 0) -> str:
    """``word`` in its STATUS_STYLES colour when ``on`` (as it is when unknown), padded to
    ``width`` outside the colour codes so that columns stay aligned."""
    return paint(word, STATUS_STYLES.get(word, ""), on) + " " * max(width - len(word), 0)


# --- the tree ----------------------------------------------------------------------------

BOX = ("├─ ", "└─ ", "│  ", "   ")
ASCII = ("|- ", "`- ", "|  ", "   ")


def unicode_ok(stream: TextIO | None = None) -> bool:
    """Whether the stream's encoding writes any character (a UTF encoding)."""
    encoding = getattr(stream if stream is not None else sys.stdout, "encoding", None) or "ascii"
    return encoding.lower().replace("_", "-").startswith("utf")


def tree_chars(stream: TextIO | None = None) -> tuple[str, str, str, str]:
    """(branch, last branch, continuation, blank) for the tree: box characters when the
    stream's encoding can write them, ASCII otherwise."""
    encoding = getattr(stream if stream is not None else sys.stdout, "encoding", None) or "ascii"
    try:
        "".join(BOX).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return BOX


def never_fail_to_encode() -> None:
    """stdout and stderr write what their encoding cannot as backslash escapes instead of
    ending the command in a UnicodeEncodeError (PYTHONIOENCODING=ascii, a C locale, and a
    path with an é in it)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and not unicode_ok(stream):
            reconfigure(errors="backslashreplace")


# --- hints ------------------------------------------------------------------------------

# The command line of this run (set once by the CLI from argv): hints (freshroot.hints)
# repeat its --root, --config and --generations.
_argv: list[str] = []


def remember_invocation(argv: Sequence[str]) -> None:
    """Keep this run's command line, for the hints it prints."""
    _argv[:] = list(argv)


def invocation() -> list[str]:
    """This run's command line (empty outside the CLI)."""
    return list(_argv)
