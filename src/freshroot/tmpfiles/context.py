"""What every phase shares: the options, the configuration, the logger, and systemd's error
model (an action either fails, which makes the run exit 73 unless the line has '-', or warns
and goes on)."""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from freshroot.errors import UnsafePathError, os_error_message
from freshroot.fs.chase import Chased, ChaseFlags, chase, chase_child
from freshroot.log import debug_enabled, logger
from freshroot.rootpaths import on_host
from freshroot.tmpfiles.globs import GlobIndex
from freshroot.tmpfiles.model import Config, Item, ItemGroup

# What glob(3) reports as "no match" rather than an error for a path without wildcards.
MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})

_SAFE_NOFOLLOW = ChaseFlags.SAFE | ChaseFlags.NOFOLLOW
# How many SAFE-walked directories a phase keeps open: lines come grouped by directory, so a
# few suffice, and each is an open fd (the soft limit is often 1024).
_DIRS_MAX = 64


class Walked(NamedTuple):
    """A directory chased with SAFE: its O_PATH fd, its stat and its canonical path."""

    fd: int
    st: os.stat_result
    path: str


class Operation(enum.Flag):
    NONE = 0
    CREATE = enum.auto()
    REMOVE = enum.auto()
    CLEAN = enum.auto()
    PURGE = enum.auto()


class Creation(enum.Enum):
    """systemd's CreationMode: whether fd_set_perms may apply the ':' (only-create) fields."""

    NORMAL = "Created"
    EXISTING = "Found existing"
    FORCE = "Created replacement"
    COPIED = "Copied"  # systemd's _CREATION_MODE_INVALID after C: counts as not existing


class NoMatch(Exception):  # noqa: N818  (control flow, never shown)
    """A literal (wildcard-free) glob line's path is not there: glob(3) would match nothing."""


class ItemFailed(Exception):  # noqa: N818  (a control-flow signal, not an error type users see)
    """An action failed the way systemd's ``return log_error_errno(...)`` does. The message is
    already logged; the run's exit status becomes 73 unless the line allows failure."""


@dataclass(frozen=True, slots=True)
class Options:
    """The tmpfiles run's root and mode."""
    root_fd: int
    root: str = "/"  # for messages only: paths are always resolved from root_fd
    dry_run: bool = False
    # How messages show a path: below ``root``, as systemd-tmpfiles --root does (None), or as
    # the root sees it ("/": freshroot apply's tmpfiles step, in freshroot's one path style).
    display_root: str | None = None


@dataclass
class Context:
    """One tmpfiles run: its configuration, the items by path, and what was done."""
    options: Options
    config: Config
    items_by_path: dict[str, ItemGroup] = field(default_factory=dict)  # systemd's c->items
    globs_by_path: dict[str, ItemGroup] = field(default_factory=dict)  # systemd's c->globs
    done: dict[int, Operation] = field(default_factory=dict)  # id(item) -> operations done
    failed: bool = False
    _glob_index: GlobIndex | None = field(init=False, default=None)
    # Per-item functions for the operations other modules implement (clean, purge): they
    # raise ItemFailed, and run in the slot systemd's process_item gives them.
    extra: dict[Operation, Callable[[Context, Item], None]] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict)  # per-run lookups (accounts, parsed ACLs)
    # While a wildcard-free glob line runs its action directly (instead of globbing first), a
    # path that is not there is "no match", not an error.
    literal_glob: bool = False
    # The parent directory mkdir_parents_item just chased with SAFE, for open_parent to reuse.
    parent_hint: tuple[str, Chased] | None = None
    verbose: bool = field(init=False, default=False)
    # Set by freshroot.tmpfiles.decide: the phases then only call it for each (item,
    # operation) they would process, in the engine's order, and change nothing.
    visit: Callable[[Item, Operation], bool] | None = None
    # Directories already walked with SAFE in this phase, by the path that named them (with
    # the directories above them that the walk went through): most lines share their parent,
    # or its parent, with the line before. Dropped whenever anything is removed, replaced or
    # given a new owner (the walk could then end elsewhere or be unsafe).
    _dirs: dict[str, Walked] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        # Whether action/debug messages are shown at all (messages in hot paths are only
        # formatted when they are).
        self.verbose = self.options.dry_run or debug_enabled()
        for g in self.config.groups:
            self.items_by_path.setdefault(g.path, g)
        for g in self.config.globs:
            self.globs_by_path.setdefault(g.path, g)

    @property
    def root_fd(self) -> int:
        return self.options.root_fd

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def shown(self, path: str) -> str:
        """A path as messages show it: below --root, like systemd's prefixed paths (or below
        ``display_root``)."""
        return on_host(path, self.options.root if self.options.display_root is None else self.options.display_root)

    def error(self, message: str) -> ItemFailed:
        logger.error(message)
        return ItemFailed(message)

    def os_failure(self, what: str, error: OSError) -> ItemFailed:
        return self.error(f"{what}: {error.strerror or os_error_message(error)}")

    def warn(self, message: str) -> None:
        logger.warning(message)

    def info(self, message: str) -> None:
        logger.info(message)

    def debug(self, message: str) -> None:
        logger.debug(message)

    def action(self, would: str, doing: str, rest: str) -> None:
        """systemd's log_action: info under --dry-run, debug otherwise."""
        if self.dry_run:
            logger.info("%s %s", would, rest)
        else:
            logger.debug("%s %s", doing, rest)

    def open_parent(self, item: Item, path: str) -> Chased:
        """path_open_parent_safe: the parent directory of ``path``, chased with SAFE."""
        if not is_normalized(path):
            raise self.error(f"Failed to open parent of '{self.shown(path)}': path not normalized.")
        parent = parent_of(path)
        hint, self.parent_hint = self.parent_hint, None
        if hint is not None:
            if hint[0] == parent:
                return hint[1]
            hint[1].close()
        try:
            return self.safe_dir(parent)
        except UnsafePathError as e:
            # systemd's CHASE_WARN has already said what is unsafe; the item fails.
            if self.literal_glob and not self._exists(path):
                raise NoMatch(path) from e
            if item.allow_failure:
                # systemd chases without CHASE_WARN then: the refusal is not shown.
                logger.debug(str(e))
                raise ItemFailed(str(e)) from e
            raise self.error(str(e)) from e
        except OSError as e:
            if self.literal_glob and e.errno in MISSING:
                raise NoMatch(path) from e
            suffix = ", ignoring" if item.allow_failure else ""
            message = f"Failed to open path '{self.shown(parent)}'{suffix}: {e.strerror or e}"
            if item.allow_failure:
                logger.info(message)
                raise ItemFailed(message) from e
            raise self.error(message) from e

    def open_safe(self, path: str) -> Chased:
        """path_open_safe: the entry itself, SAFE, not following a symlink at the end."""
        try:
            return self._chase_entry(path)
        except UnsafePathError as e:
            if self.literal_glob and not self._exists(path):
                raise NoMatch(path) from e  # glob(3) would not have matched: nothing to refuse
            raise self.error(str(e)) from e
        except OSError as e:
            if self.literal_glob and e.errno in MISSING:
                raise NoMatch(path) from e
            raise self.error(f"Failed to open path {self.shown(path)}: {e.strerror or e}") from e

    def _chase_entry(self, path: str) -> Chased:
        """chase(path, SAFE|NOFOLLOW), walking only the last step when the parent directory is
        (or can be) remembered and was reached without a symlink: chase() would walk the same
        way to it. A parent whose walk fails is left to the full chase, which says what is wrong
        in its own words (about ``path``)."""
        head, _, name = path.rpartition("/")
        if name and path.startswith("/") and is_normalized(path):
            parent = head or "/"
            try:
                walked = self._walked_dir(parent)
            except (OSError, UnsafePathError):
                walked = None
            if walked is not None and walked.path == parent:
                return chase_child(walked.fd, walked.st, walked.path, name, path=path)
        return chase(path, root_fd=self.root_fd, flags=_SAFE_NOFOLLOW)

    def safe_dir(self, path: str) -> Chased:
        """chase(path, SAFE) for a directory, remembered for the next line that needs it."""
        walked = self._known(path) or self._step_down(path)
        if walked is None:
            c = chase(path, root_fd=self.root_fd, flags=ChaseFlags.SAFE)
            if not stat.S_ISDIR(c.st.st_mode):
                return c
            walked = self._remember(path, c)
        return Chased(os.dup(walked.fd), walked.path, "", walked.st)

    def _walked_dir(self, path: str) -> Walked | None:
        """The remembered SAFE walk to the directory ``path`` (walked now if need be; None when
        it is not a directory). The fd stays the cache's: do not close it."""
        walked = self._known(path) or self._step_down(path)
        if walked is None:
            c = chase(path, root_fd=self.root_fd, flags=ChaseFlags.SAFE)
            if not stat.S_ISDIR(c.st.st_mode):
                c.close()
                return None
            walked = self._remember(path, c)
        return walked

    def _known(self, path: str) -> Walked | None:
        walked = self._dirs.pop(path, None)
        if walked is not None:
            self._dirs[path] = walked  # now the most recently used: the oldest go first
        return walked

    def _step_down(self, path: str) -> Walked | None:
        """chase(path, SAFE), carried on from the nearest directory above it that was reached
        without a symlink, one name at a time (chase_child), remembering each directory: the
        steps and checks chase() would make. None as soon as a step meets anything but a
        directory (a symlink to follow, a file, a missing name, an unsafe transition): the
        caller then chases the whole path, which handles it and words any error about it."""
        if not path.startswith("/") or not is_normalized(path):
            return None
        names: list[str] = []  # below the directory found, innermost first
        above = path
        walked: Walked | None = None
        while walked is None:
            if above == "/":
                walked = self._known("/") or self._remember_root()
                continue
            above, _, name = above.rpartition("/")
            names.append(name)
            above = above or "/"
            found = self._known(above)
            if found is not None and found.path == above:
                walked = found
        for name in reversed(names):
            try:
                c = chase_child(walked.fd, walked.st, walked.path, name, path=path)
            except (OSError, UnsafePathError):
                return None
            if not stat.S_ISDIR(c.st.st_mode):
                c.close()
                return None
            walked = self._remember(c.path, c)
        return walked

    def _remember_root(self) -> Walked:
        return self._remember("/", Chased(os.dup(self.root_fd), "/", "", os.fstat(self.root_fd)))

    def _remember(self, path: str, c: Chased) -> Walked:
        """Keep ``c`` (a directory) in the cache, which takes its fd; the least recently used
        goes when it is full."""
        if len(self._dirs) >= _DIRS_MAX:
            os.close(self._dirs.pop(next(iter(self._dirs))).fd)
        walked = self._dirs[path] = Walked(c.detach(), c.st, c.path)
        return walked

    def forget_dirs(self) -> None:
        """Something was removed, replaced or chowned: walk again from now on."""
        for walked in self._dirs.values():
            os.close(walked.fd)
        self._dirs.clear()

    def exists(self, path: str) -> bool:
        return self._exists(path)

    def _exists(self, path: str) -> bool:
        """Whether glob(3) would see ``path`` (no SAFE rule, last symlink not followed)."""
        try:
            with chase(path, root_fd=self.root_fd, flags=ChaseFlags.NOFOLLOW):
                return True
        except OSError:
            return False

    def matches_glob(self, path: str) -> bool:
        """Whether a glob line's pattern matches ``path`` (systemd's find_glob)."""
        if self._glob_index is None:  # built on first use: only R, D and clean need it
            self._glob_index = GlobIndex(g.path for g in self.config.globs)
        return self._glob_index.matches(path)


def is_normalized(path: str) -> bool:
    """systemd's path_is_normalized: no "." or ".." components, no doubled slashes."""
    if "//" in path:
        return False
    if "/." not in path and not path.startswith("."):
        return True  # no component starts with '.' (the usual case, decided without splitting)
    return not any(c in (".", "..") for c in path.split("/"))


def parent_of(path: str) -> str:
    """posixpath.dirname for a normalized absolute path ("/" for "/name"), without its
    generality (it shows in per-line profiles)."""
    return path.rpartition("/")[0] or "/"


def base_name(path: str) -> str:
    name = path.rpartition("/")[2]  # posixpath.basename, without its generality
    if not name:
        raise OSError(errno.EISDIR, "the path names a directory", path)
    return name
