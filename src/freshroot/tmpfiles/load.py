"""Reading the configuration for one run: the entry point the create/remove/clean phases call.

``load(options)`` returns a Config: items grouped per path in systemd's order, plus whether any
line was bad (exit 65 at the end) and whether the run must stop before applying anything (a file
named on the command line could not be read, or one of its lines failed in a way that is not a
configuration error; systemd then exits 1 without changing anything).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from freshroot.errors import EXIT_FAILURE, Location
from freshroot.fs import ops
from freshroot.tmpfiles.config import ConfigBuilder
from freshroot.tmpfiles.discovery import (
    SYSTEM_DIRS,
    ConfFile,
    DiscoveryError,
    ListedFiles,
    ReadError,
    list_files,
    search,
    user_dirs,
)
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
        from freshroot.errors import TmpfilesUsageError

        cat = bool(getattr(args, "cat_config", False) or getattr(args, "tldr", False))
        if args.replace is not None:
            if not args.replace.startswith("/"):
                raise TmpfilesUsageError("The argument to --replace= must be an absolute path.")
            if not args.replace.endswith(".conf"):
                raise TmpfilesUsageError("The argument to --replace= must have the extension '.conf'.")
            if cat:
                raise TmpfilesUsageError("Option --replace= is not supported with --cat-config/--tldr.")
            if not args.configs:
                raise TmpfilesUsageError("When --replace= is given, some configuration items must be specified.")
        if args.root and args.user:
            raise TmpfilesUsageError("Combination of --user and --root= is not supported.")
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
    """Reads the sources of one run. Files below the root (the listed ones, and bare names given
    on the command line, looked up in the configuration directories) are chased below
    ``root_fd``; a path given on the command line and the credentials' tmpfiles.extra are the
    host's, opened as systemd opens them."""

    def __init__(self, options: LoadOptions, report: Reporter, root_fd: int) -> None:
        self.options = options
        self.root_fd = root_fd
        self.listed = ListedFiles(root_fd)
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
        """read_config_file() for a command-line argument or the credentials' file: False when
        the file could not be read or a line failed hard."""
        name = path
        try:
            if path == "-":
                name = "<stdin>"
                data = sys.stdin.buffer.read()
            elif "/" in path:
                name = os.path.abspath(path)  # the host's file, as systemd's fopen() opens it
                data = ops.read_host(name)
            else:
                name, data = search(self.root_fd, self.options.root, self.options.dirs(), path)
        except ReadError as e:
            self.report(Message(Level.ERR, f"Failed to read '{e.name}': {e.error.strerror}"))
            return False
        except OSError as e:
            if ignore_missing and isinstance(e, FileNotFoundError):
                return True
            self.report(Message(Level.ERR, f"Failed to read '{name}': {e.strerror}"))
            return False
        return self.parse_data(name, data)

    def read_listed(self, f: ConfFile) -> None:
        """A file of the list, chased below the root; one that is gone is skipped silently, as
        systemd skips it."""
        try:
            data = self.listed.read(f)
        except FileNotFoundError:
            return
        except OSError as e:
            self.report(Message(Level.ERR, f"Failed to read '{f.path}': {e.strerror}"))
            return
        self.parse_data(f.path, data)

    def parse_data(self, name: str, data: bytes) -> bool:
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

    def read_arguments(self) -> bool:
        if self.options.inline:
            # Each argument is one line, given to the line parser as it is: no comment or
            # blank-line skipping, and a newline inside it is just whitespace.
            ok = self.parse_text("(argument)", list(enumerate(self.options.configs, start=1)))
            self.builder.inherit_x_ages()
            return ok
        return all(self.read_file(c, ignore_missing=False) for c in self.options.configs)

    def read_all(self, files: list[ConfFile], extra: Mapping[str, str] | None = None) -> bool:
        for f in files:
            if f.replacement:
                if not self.read_arguments():
                    return False
            elif extra is not None and f.path in extra:
                self.parse_text(f.path, list(config_lines(extra[f.path].encode("utf-8", "surrogateescape"))))
                self.builder.inherit_x_ages()
            elif not f.mask:
                self.read_listed(f)
        return True


def _with_extra(files: list[ConfFile], root: str, extra: Mapping[str, str]) -> tuple[list[ConfFile], dict[str, str]]:
    """Files that are not on disk, placed in /run/tmpfiles.d: a same-name file in /etc wins
    over them, and they win over /usr/local/lib and /usr/lib ones (systemd's precedence)."""
    by_name = {f.name: f for f in files}
    texts: dict[str, str] = {}
    for name, text in extra.items():
        current = by_name.get(name)
        if current is not None and current.dir == "/etc/tmpfiles.d":
            continue
        path = join_root(root, f"/run/tmpfiles.d/{name}")
        by_name[name] = ConfFile(name, path, dir="/run/tmpfiles.d")
        texts[path] = text
    return [by_name[n] for n in sorted(by_name)], texts


def _open_root(root: str) -> int:
    """The root's fd; DiscoveryError, in systemd's words, for a root that cannot be opened."""
    try:
        return ops.open_root(root)
    except FileNotFoundError as e:
        raise DiscoveryError(f"Failed to determine if '{root}' points to the root directory: {e.strerror}") from None
    except OSError as e:
        raise DiscoveryError(f"Failed to open '{root}': {e.strerror}") from None


def load(options: LoadOptions, report: Reporter | None = None, *, extra: Mapping[str, str] | None = None) -> Config:
    """Read everything systemd-tmpfiles would read for these options.

    ``extra`` (file name -> text) adds files as if they were in /run/tmpfiles.d: the
    declaration's rendered [tmpfiles] rules, which the boot unit writes there.
    """
    report = report or stderr_reporter()
    try:
        root_fd = _open_root(options.root)
    except DiscoveryError as e:
        return _aborted(report, e)
    reader = _Reader(options, report, root_fd)
    try:
        with _collector_paused():
            return _load(options, reader, extra)
    finally:
        reader.listed.close()
        os.close(root_fd)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading makes a few objects per line and keeps them all: the cyclic collector's passes
    over them during the read find nothing to free (they were ~8% of a 10k-line read)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _aborted(report: Reporter, e: DiscoveryError) -> Config:
    """systemd gives up before reading anything: exit 1, nothing applied."""
    report(Message(Level.WARNING, e.message))
    builder = ConfigBuilder()
    builder.aborted = True
    return builder.build()


def _load(options: LoadOptions, reader: _Reader, extra: Mapping[str, str] | None) -> Config:
    root_fd, report = reader.root_fd, reader.report
    if options.replace is not None or not options.configs:
        try:
            files = list_files(root_fd, options.root, options.dirs(), options.replace, report)
        except DiscoveryError as e:
            return _aborted(report, e)
        texts = None
        if extra:
            files, texts = _with_extra(files, options.root, extra)
        ok = reader.read_all(files, texts)
    else:
        ok = reader.read_arguments()
    if ok:
        creds = options.environ.get("CREDENTIALS_DIRECTORY", "")
        if creds.startswith("/"):
            reader.read_file(os.path.join(creds, "tmpfiles.extra"), ignore_missing=True)
    reader.builder.aborted = not ok
    return reader.builder.build()


def cat_config(options: LoadOptions, *, tldr: bool, report: Reporter | None = None) -> int:
    """--cat-config / --tldr: print the files systemd would read (command-line files are not
    shown, as systemd ignores them here), each under a '# path' header. 1 if the root cannot be
    opened or a listed file cannot be found again, as systemd."""
    from freshroot.tmpfiles.discovery import cat_config as render

    report = report or stderr_reporter()
    try:
        root_fd = _open_root(options.root)
    except DiscoveryError as e:
        report(Message(Level.WARNING, e.message))
        return EXIT_FAILURE
    try:
        files = list_files(root_fd, options.root, options.dirs(), report=report)
        text, ok = render(root_fd, files, tldr=tldr, report=report)
    finally:
        os.close(root_fd)
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()
    return 0 if ok else EXIT_FAILURE


def run_cat(args: argparse.Namespace) -> int:
    """The handler part for --cat-config and --tldr (called by freshroot.tmpfiles.handlers:run)."""
    return cat_config(LoadOptions.from_args(args), tldr=bool(args.tldr))
