"""``freshroot-tmpfiles`` (systemd-tmpfiles' command line, so it can stand in for it) and
``freshroot tmpfiles`` (the same, plus ``freshroot tmpfiles render``). Argument definitions
only: nothing heavy is imported; the handlers are in freshroot.tmpfiles.handlers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from freshroot.cli import ArgumentParser, add_command, dispatch
from freshroot.errors import EXIT_FAILURE

TYPE_CHECKING = False  # as freshroot.cli: typing is not imported at run time
if TYPE_CHECKING:
    from typing import NoReturn

# The end of --help for both spellings of the command.
ENVIRONMENT = ("environment:\n"
               "  FRESHROOT_CLEAN_WORKERS=N  how many processes a big --clean walk (past 20,000\n"
               "                             entries) shares its directories out to; default: one\n"
               "                             per CPU, at most 4; 1 keeps the walk in one process")


def add_arguments(parser: argparse.ArgumentParser, *, debug: bool = True) -> None:
    cmds = parser.add_argument_group("commands")
    cmds.add_argument("--create", action="store_true", help="create and adjust files and directories")
    cmds.add_argument("--clean", action="store_true", help="clean up files and directories by age")
    cmds.add_argument("--remove", action="store_true", help="remove files and directories marked for removal")
    cmds.add_argument("--purge", action="store_true",
                      help="delete files and directories marked for creation in the given files (careful!)")
    cmds.add_argument("--cat-config", action="store_true", help="show configuration files")
    cmds.add_argument("--tldr", action="store_true", help="show non-comment parts of configuration")
    opts = parser.add_argument_group("options")
    opts.add_argument("--user", action="store_true", help="execute user configuration")
    opts.add_argument("--boot", action="store_true", help="execute actions only safe at boot")
    opts.add_argument("--graceful", action="store_true", help="quietly ignore unknown users or groups")
    opts.add_argument("--prefix", action="append", default=[], metavar="PATH",
                      help="only apply rules with the specified prefix")
    opts.add_argument("--exclude-prefix", action="append", default=[], metavar="PATH",
                      help="ignore rules with the specified prefix")
    opts.add_argument("-E", dest="exclude_api", action="store_true",
                      help="ignore rules prefixed with /dev, /proc, /run, /sys")
    opts.add_argument("--root", metavar="PATH", help="operate on an alternate file system root")
    opts.add_argument("--image", metavar="PATH",
                      help="operate on disk image as filesystem root (mounted with systemd-dissect)")
    opts.add_argument("--image-policy", metavar="POLICY",
                      help="specify disk image dissection policy (passed to systemd-dissect)")
    opts.add_argument("--replace", metavar="PATH", help="treat arguments as replacement for PATH")
    opts.add_argument("-n", "--dry-run", action="store_true", help="just print what would be done")
    opts.add_argument("--inline", action="store_true", help="treat arguments as configuration lines")
    opts.add_argument("--no-pager", action="store_true", help="accepted for compatibility; never pages")
    opts.add_argument("--explain", metavar="PATH",
                      help="(freshroot) say which line keeps, cleans or would remove PATH, and why; "
                           "changes nothing")
    if debug:  # `freshroot tmpfiles` already has the global --debug
        opts.add_argument("--debug", action="store_true", help="log every step; show tracebacks")
    parser.add_argument("configs", nargs="*", metavar="CONFIGURATION FILE",
                        help="configuration files (or lines, with --inline); '-' reads standard input")


# The systemd release whose systemd-tmpfiles this one matches (tests/tmpfiles compare with it).
SYSTEMD_VERSION = "262"


def version_text() -> str:
    """systemd's two --version lines (a script that reads "systemd N" from the first line
    sees the release this one behaves as; the features line names only what tmpfiles uses),
    then freshroot's own version."""
    from freshroot import __version__

    return (f"systemd {SYSTEMD_VERSION} ({SYSTEMD_VERSION})\n+ACL -SELINUX -SMACK\n"
            f"freshroot-tmpfiles (freshroot {__version__}), systemd-tmpfiles {SYSTEMD_VERSION} reimplemented")


class TmpfilesArgumentParser(ArgumentParser):
    """Usage errors in getopt_long's words, as systemd-tmpfiles prints them (the first
    one only, no usage text), exit 1."""

    argv: Sequence[str] = ()  # the arguments being parsed (main() sets them)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {getopt_message(message, self.argv)}\n")
        raise SystemExit(self.usage_exit)


def getopt_message(message: str, argv: Sequence[str] = ()) -> str:
    """argparse's complaint as systemd-tmpfiles words it (getopt_long(3), and its own
    "unrecognized option" for an unknown short option too)."""
    import re

    if message.startswith("unrecognized arguments: "):
        first = message.removeprefix("unrecognized arguments: ").split(" ")[0]
        if first.startswith("--"):
            return f"unrecognized option '{first.partition('=')[0]}'"
        if first.startswith("-") and len(first) > 1:
            return f"unrecognized option '-{first[1]}'"
        return message
    m = re.fullmatch(r"argument (-\S+?)(?:/(-\S+))?: expected one argument", message)
    if m is not None:
        long = m.group(2) or m.group(1)
        return (f"option '{long}' requires an argument" if long.startswith("--")
                else f"option requires an argument -- '{long[1:]}'")
    m = re.fullmatch(r"argument (-\S+?)(?:/(-\S+))?: ignored explicit argument '(.*)'", message)
    if m is not None:
        short = m.group(1) if not m.group(1).startswith("--") else None
        if short is not None and any(a.startswith(short) and not a.startswith("--") for a in argv):
            # '-nq': short options run together; getopt stops at the one it does not know.
            return f"unrecognized option '-{m.group(3)[:1]}'"
        return f"option '{m.group(2) or m.group(1)}' doesn't allow an argument"
    m = re.fullmatch(r"ambiguous option: (\S+?)(?:=\S*)? could match (.*)", message)
    if m is not None:
        options = ", ".join(o.strip() for o in m.group(2).split(","))
        return f"option '{m.group(1)}' is ambiguous; possibilities: {options}"
    return message


def build_parser() -> TmpfilesArgumentParser:
    parser = TmpfilesArgumentParser(
        prog="freshroot-tmpfiles",
        description="Create, delete, and clean up files and directories, as systemd-tmpfiles does.",
        epilog=ENVIRONMENT,
    )
    parser.usage_exit = EXIT_FAILURE  # systemd-tmpfiles' code for bad arguments
    parser.add_argument("--version", action="version", version=version_text())
    add_arguments(parser)
    parser.set_defaults(handler="freshroot.tmpfiles.handlers:run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    parser.argv = tuple(args)
    return dispatch(args, parser, "freshroot-tmpfiles")


def register(subparsers: argparse._SubParsersAction[ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "tmpfiles", handler="freshroot.tmpfiles.handlers:command",
        help="create, remove and clean files as systemd-tmpfiles does; render tmpfiles.d files",
        description="Takes systemd-tmpfiles' command line (see freshroot-tmpfiles --help).\n\n"
        "freshroot tmpfiles render [--config PATH] [--output DIR] [--json]\n"
        "  writes the declaration's [tmpfiles] rules and settings as tmpfiles.d files\n"
        "  (to standard output, or into DIR).",
    )
    add_arguments(parser, debug=False)
    parser.usage_exit = EXIT_FAILURE  # systemd-tmpfiles' code for bad arguments
    parser.epilog = ENVIRONMENT
    render = parser.add_argument_group("render (freshroot tmpfiles render)")
    render.add_argument("--config", metavar="PATH", action="append",
                        help="read the declaration from PATH instead of the root's freshroot.toml and conf.d")
    render.add_argument("--output", metavar="DIR", help="write the .conf files into DIR")
    render.add_argument("--json", action="store_true", help="print {file name: text} as one JSON document")
