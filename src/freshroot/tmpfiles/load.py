"""Reading the configuration for one run: the entry point the create/remove/clean phases call.

``load(options)`` returns a Config: items grouped per path in systemd's order, plus whether any
line was bad (exit 65 at the end) and whether the run must stop before applying anything (a file
named on the command line could not be read, or one of its lines failed in a way that is not a
configuration error; systemd then exits 1 without changing anything).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from freshroot.errors import Location
from freshroot.tmpfiles.config import ConfigBuilder
from freshroot.tmpfiles.discovery import SYSTEM_DIRS, ConfFile, list_files, user_dirs
from freshroot.tmpfiles.fields import join_root
from freshroot.tmpfiles.lines import LineTooLong, config_lines
from freshroot.tmpfiles.messages import Level, LineError, Message, Reporter, SkipLine, stderr_reporter
from freshroot.tmpfiles.model import Config
from freshroot.tmpfiles.parse import LineParser, ParseOptions

if TYPE_CHECKING:
    import argparse

API_PREFIXES = ("/dev", "/proc", "/run", "/sys")


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """The parts of systemd-tmpfiles' command line that decide what is read and how."""

    configs: tuple[str, ...] = ()
    root: str = "/"
    user: bool = False
    boot: bool = False
    graceful: bool = False
    replace: str | None = None
    inline: bool = False
    prefixes: tuple[str, ...] = ()
    exclude_prefixes: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LoadOptions:
        """The options of a systemd-tmpfiles command line, refused where systemd refuses them."""
        from freshroot.errors import UsageError

        cat = bool(getattr(args, "cat_config", False) or getattr(args, "tldr", False))
        if args.replace is not None:
            if not args.replace.startswith("/"):
                raise UsageError("The argument to --replace= must be an absolute path.")
            if not args.replace.endswith(".conf"):
                raise UsageError("The argument to --replace= must have the extension '.conf'.")
            if cat:
                raise UsageError("Option --replace= is not supported with --cat-config/--tldr.")
            if not args.configs:
                raise UsageError("When --replace= is given, some configuration items must be specified.")
        if args.root and args.user:
            raise UsageError("Combination of --user and --root= is not supported.")
        exclude = tuple(args.exclude_prefix)
        if getattr(args, "exclude_api", False):
            exclude += tuple(p for p in API_PREFIXES if p not in exclude)
        root = os.path.abspath(args.root) if args.root else "/"
        return cls(
            configs=tuple(args.configs), root=root, user=args.user, boot=args.boot,
            graceful=args.graceful, replace=args.replace, inline=args.inline,
            prefixes=tuple(args.prefix), exclude_prefixes=exclude,
        )

    def dirs(self) -> tuple[str, ...]:
        return user_dirs(self.environ) if self.user else SYSTEM_DIRS


class _Reader:
    def __init__(self, options: LoadOptions, report: Reporter) -> None:
        self.options = options
        self.report = report
        self.builder = ConfigBuilder()
        self.parser = LineParser(ParseOptions(
            root=options.root, user=options.user, boot=options.boot, graceful=options.graceful,
            include_prefixes=options.prefixes, exclude_prefixes=options.exclude_prefixes,
            environ=options.environ,
        ))

    def _flush_notes(self, location: Location) -> None:
        for level, text, located in self.parser.notes:
            self.report(Message(level, text, location if located else None))
        self.parser.notes = []

    def parse_text(self, name: str, lines: Sequence[tuple[int, str]]) -> bool:
        """Parse lines of one source; False when a line failed in a non-configuration way."""
        ok = True
        for number, text in lines:
            location = Location(name, number)
            try:
                item = self.parser.parse_line(text, location)
            except SkipLine as s:
                self._flush_notes(location)
                if s.message:
                    self.report(Message(s.level, s.message, location))
                continue
            except LineError as e:
                self._flush_notes(location)
                self.report(Message(e.level, e.text, location if e.located else None))
                if e.invalid:
                    self.builder.invalid = True
                else:
                    ok = False
                continue
            self._flush_notes(location)
            if not self.builder.add(item):
                shown = join_root(self.options.root, item.path)
                self.report(Message(Level.NOTICE, f'Duplicate line for path "{shown}", ignoring.', location))
        return ok

    def read_file(self, path: str, *, ignore_missing: bool) -> bool:
        """read_config_file(): False when the file could not be read or a line failed hard."""
        name = path
        try:
            if path == "-":
                name = "<stdin>"
                data = sys.stdin.buffer.read()
            else:
                name = self._search(path)
                with open(name, "rb") as f:
                    data = f.read()
        except OSError as e:
            if ignore_missing and isinstance(e, FileNotFoundError):
                return True
            self.report(Message(Level.ERR, f"Failed to read '{path}': {e.strerror}"))
            return False
        self.report(Message(Level.DEBUG, f'Reading config file "{name}"\u2026'))
        lines: list[tuple[int, str]] = []
        try:
            for entry in config_lines(data):
                lines.append(entry)  # noqa: PERF402 - the generator may raise part-way
        except LineTooLong:
            # systemd parses the lines before the overlong one, then gives up on the file.
            self.parse_text(name, lines)
            self.report(Message(Level.ERR, f"Failed to read '{name}': No buffer space available"))
            return False
        ok = self.parse_text(name, lines)
        if ok:  # as read_config_file(): not after a file with a hard failure
            self.builder.inherit_x_ages()
        return ok

    def _search(self, path: str) -> str:
        """A bare file name is looked for in the configuration directories (under --root); a path
        is made absolute, as messages name it."""
        if "/" in path:
            return os.path.abspath(path)
        for d in self.options.dirs():
            candidate = os.path.join(join_root(self.options.root, d), path)
            if os.path.exists(candidate):
                return candidate
        raise FileNotFoundError(2, "No such file or directory", path)

    def read_arguments(self) -> bool:
        if self.options.inline:
            # Each argument is one line, given to the line parser as it is: no comment or
            # blank-line skipping, and a newline inside it is just whitespace.
            ok = self.parse_text("(argument)", list(enumerate(self.options.configs, start=1)))
            self.builder.inherit_x_ages()
            return ok
        return all(self.read_file(c, ignore_missing=False) for c in self.options.configs)

    def read_all(self, files: list[ConfFile], replace_path: str | None,
                 extra: Mapping[str, str] | None = None) -> bool:
        for f in files:
            if replace_path is not None and f.path == replace_path:
                if not self.read_arguments():
                    return False
            elif extra is not None and f.path in extra:
                self.parse_text(f.path, list(config_lines(extra[f.path].encode("utf-8", "surrogateescape"))))
                self.builder.inherit_x_ages()
            elif not f.mask:
                self.read_file(f.path, ignore_missing=True)
        return True


def _with_extra(files: list[ConfFile], root: str, extra: Mapping[str, str]) -> tuple[list[ConfFile], dict[str, str]]:
    """Files that are not on disk, placed in /run/tmpfiles.d: a same-name file in /etc wins
    over them, and they win over /usr/local/lib and /usr/lib ones (systemd's precedence)."""
    by_name = {f.name: f for f in files}
    texts: dict[str, str] = {}
    etc = join_root(root, "/etc/tmpfiles.d") + "/"
    for name, text in extra.items():
        current = by_name.get(name)
        if current is not None and current.path.startswith(etc):
            continue
        path = join_root(root, f"/run/tmpfiles.d/{name}")
        by_name[name] = ConfFile(name, path)
        texts[path] = text
    return [by_name[n] for n in sorted(by_name)], texts


def load(options: LoadOptions, report: Reporter | None = None, *, extra: Mapping[str, str] | None = None) -> Config:
    """Read everything systemd-tmpfiles would read for these options.

    ``extra`` (file name -> text) adds files as if they were in /run/tmpfiles.d: the
    declaration's rendered [tmpfiles] rules, which the boot unit writes there.
    """
    reader = _Reader(options, report or stderr_reporter())
    if options.replace is not None or not options.configs:
        files, replace_path = list_files(options.root, options.dirs(), options.replace)
        texts = None
        if extra:
            files, texts = _with_extra(files, options.root, extra)
        ok = reader.read_all(files, replace_path, texts)
    else:
        ok = reader.read_arguments()
    if ok:
        creds = options.environ.get("CREDENTIALS_DIRECTORY", "")
        if creds.startswith("/"):
            reader.read_file(os.path.join(creds, "tmpfiles.extra"), ignore_missing=True)
    reader.builder.aborted = not ok
    return reader.builder.build()


def cat_config(options: LoadOptions, *, tldr: bool) -> int:
    """--cat-config / --tldr: print the files systemd would read (command-line files are not
    shown, as systemd ignores them here), each under a '# path' header."""
    from freshroot.tmpfiles.discovery import cat_config as render

    files, _ = list_files(options.root, options.dirs())
    text = render(files, tldr=tldr)
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()
    return 0


def run_cat(args: argparse.Namespace) -> int:
    """The handler part for --cat-config and --tldr (called by freshroot.tmpfiles.main:run)."""
    return cat_config(LoadOptions.from_args(args), tldr=bool(args.tldr))
