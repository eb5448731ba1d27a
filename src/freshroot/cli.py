"""Command-line parsing and dispatch. No logic lives here.

Each subcommand is declared in the small ``commands`` module of its feature's package (the
rows of freshroot.features; argparse definitions only, so ``--help`` stays fast) and names
its handler as ``"module:function"`` in the package's ``handlers`` module, imported only when
that subcommand runs. Every handler takes the parsed arguments and returns an exit code.
:func:`main` is the one place that turns a FreshrootError into ``file:line: message`` and an
exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from freshroot import __version__
from freshroot.errors import EXIT_DATAERR, EXIT_FAILURE, FreshrootError, OperationError, os_error_message

# Modules whose register(subparsers) adds subcommands, in the order --help lists them: the
# rows of the feature registry that have commands.
from freshroot.features import COMMAND_MODULES

# typing costs ~3 ms of start-up and is needed only by the type checker, which treats any
# name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

Handler = Callable[[argparse.Namespace], int]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter without its two lazy imports, shutil and textwrap (~5 ms of --help).

    The width comes from the terminal as shutil.get_terminal_size() finds it, and argument
    help is wrapped greedily at spaces, which is all textwrap did with it.
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _split_lines(self, text: str, width: int) -> list[str]:
        lines: list[str] = []
        line = ""
        for word in text.split():
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        return [*lines, line] if line else lines


def _terminal_columns() -> int:
    import os

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(sys.__stdout__.fileno() if sys.__stdout__ else 1).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error exits 65 (bad arguments, docs/exit-codes.md; 1 for
    freshroot-tmpfiles, as systemd-tmpfiles) with a one-line hint, and help formatted by
    :class:`HelpFormatter` unless told otherwise."""

    usage_exit = EXIT_DATAERR
    # --json was on the command line: a usage error also gives a JSON document on stdout
    # (docs/json.md). Set by dispatch before parsing.
    json_asked = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.stderr.write(f"Try '{self.prog} --help' for more information.\n")
        if ArgumentParser.json_asked:
            from freshroot.output import error_document, print_json

            print_json(error_document(f"{self.prog}: {message}", self.usage_exit,
                                      [{"message": message, "file": None, "line": None, "hint": None}]))
        raise SystemExit(self.usage_exit)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="log every step and command; show tracebacks",
    )


def root_path(value: str) -> str:
    """--root as an absolute, real path, made so once here for every command that takes it:
    snippets run with the root as their working directory and get it as $FRESHROOT_ROOT, so
    a relative one would name a directory inside the root (freshroot-tmpfiles parses its own
    --root, with systemd-tmpfiles' rule: made absolute against the working directory)."""
    import os

    return os.path.realpath(value) if value else value


def add_common(
    parser: argparse.ArgumentParser,
    *,
    root: bool = True,
    root_help: str = "operate on the root file system at DIR (an offline root such as /mnt)",
    config: bool = True,
    json: bool = False,
    dry_run: bool = False,
) -> None:
    """The options most subcommands share, spelled the same way everywhere."""
    if root:
        parser.add_argument(
            "--root", metavar="DIR", default="/", type=root_path, help=root_help,
        )
    if config:
        parser.add_argument(
            "--config", metavar="PATH", action="append",
            help="read the declaration from PATH instead of freshroot.toml and conf.d in "
                 "/etc, /run, /usr/local/lib and /usr/lib freshroot/ (may be repeated; - reads "
                 "standard input, and a pipe is read too)",
        )
    if json:
        parser.add_argument(
            "--json", action="store_true",
            help="print one JSON document on stdout instead of text",
        )
    if dry_run:
        parser.add_argument(
            "--dry-run", "-n", action="store_true",
            help="show what would be done, change nothing",
        )


def add_command(
    subparsers: argparse._SubParsersAction[ArgumentParser],
    name: str,
    *,
    handler: str,
    help: str,  # noqa: A002 - argparse's own name
    description: str | None = None,
) -> ArgumentParser:
    """Add subcommand ``name`` whose implementation is ``"module:function"`` (imported lazily)."""
    parser = subparsers.add_parser(
        name, help=help, description=description or help,
        formatter_class=HelpFormatter,
    )
    add_global_options(parser)
    parser.set_defaults(handler=handler)
    return parser


class _Null:
    """Stands in for a parser (or anything hanging off one) while only command names and help
    strings are wanted: every method accepts anything and does nothing."""

    def __getattr__(self, _name: str) -> _Null:
        return self

    def __call__(self, *_args: object, **_kwargs: object) -> _Null:
        return self


class _Names:
    """Stands in for the subparsers action: records (name, help) of each add_parser call."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str | None]] = []

    def add_parser(self, name: str, **kwargs: object) -> _Null:
        help_text = kwargs.get("help")
        self.commands.append((name, help_text if isinstance(help_text, str) else None))
        return _Null()


def _first_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: Sequence[str] | None = None) -> ArgumentParser:
    """The parser for ``argv``. Only the module of the command ``argv`` names registers its
    arguments; every other command is listed with its name and help alone, so --help and
    each command start without building a hundred arguments they do not use."""
    parser = ArgumentParser(
        prog="freshroot",
        description="A root file system wiped at every boot, and one declaration of what "
        "persists, what is created fresh, what runs, and what ships as a portable service.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"freshroot {__version__}")
    parser.add_argument("--debug", action="store_true", help="log every step and command; show tracebacks")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=ArgumentParser)
    wanted = _first_command(sys.argv[1:] if argv is None else argv)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        names = _Names()
        module.register(names)
        if wanted is not None and any(name == wanted for name, _ in names.commands):
            module.register(subparsers)
        else:
            for name, help_text in names.commands:
                subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def resolve_handler(spec: str) -> Handler:
    module, _, function = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(module), function)
    return handler


def report(error: FreshrootError, *, prog: str, debug: bool, cause: BaseException | None = None,
           as_json: bool = False) -> int:
    """The one place an error becomes a message and an exit code (and, with --json, also a
    JSON error document on stdout: docs/json.md).

    ``cause`` is the exception that was really raised when ``error`` only wraps it (an
    OSError no layer turned into an OperationError): its traceback is the useful one.
    """
    if debug:
        import traceback  # only here: keeps start-up lean

        traceback.print_exception(cause or error)
    from freshroot import log
    from freshroot.rootpaths import root_note

    note = root_note(str(error))  # the paths in the message are inside this root
    log.error(f"{prog}: {error}" + (f"\n  {note}" if note else ""))
    if as_json:
        from freshroot.output import failure_document, print_json

        print_json(failure_document(error))
    return error.exit_code


def _json_on_stdout(given: list[str]) -> bool:
    """--json is on the command line (before a ``--``)."""
    return "--json" in (given[: given.index("--")] if "--" in given else given)


def dispatch(argv: Sequence[str] | None, parser: ArgumentParser, prog: str) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    ArgumentParser.json_asked = _json_on_stdout(given)
    args = parser.parse_args(argv)
    from freshroot import classcache, output, rootpaths  # after parsing: --help needs none of it

    classcache.enable()  # the handlers' dataclasses: compiled methods from the cache file

    output.remember_invocation(given)
    # The root whose paths messages show as it sees them (freshroot.rootpaths); not for
    # freshroot tmpfiles, which names them below its --root as systemd-tmpfiles does (its
    # render, freshroot's own, remembers its root itself).
    handler = getattr(args, "handler", None)
    takes_root = isinstance(getattr(args, "root", None), str) and not str(handler).startswith("freshroot.tmpfiles.")
    rootpaths.remember_root(args.root if takes_root else None)
    output.never_fail_to_encode()
    debug = bool(getattr(args, "debug", False))
    as_json = bool(getattr(args, "json", False))
    from freshroot import log

    log.setup(debug=debug)
    if handler is None:
        parser.print_help(sys.stderr)
        return parser.usage_exit
    try:
        return resolve_handler(handler)(args)
    except FreshrootError as e:
        return report(e, prog=prog, debug=debug, as_json=as_json)
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    except OSError as e:
        # An OSError that no layer wrapped is still a failed operation, not a crash.
        return report(OperationError(os_error_message(e)), prog=prog, debug=debug, cause=e, as_json=as_json)
    except Exception as e:  # the last line of defence against tracebacks
        if debug:
            raise
        return report(FreshrootError(f"internal error: {type(e).__name__}: {e}",
                                     hint="rerun with --debug for the traceback, and please report it"),
                      prog=prog, debug=False, as_json=as_json)
    finally:
        output.remember_invocation([])  # a later main() in the same process (tests) starts afresh
        rootpaths.remember_root(None)


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(argv, build_parser(argv), "freshroot")
