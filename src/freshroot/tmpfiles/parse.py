"""One tmpfiles.d line -> one Item, checked in the order systemd 262's parse_line() checks it, so
that the first complaint about a line is the one systemd would make."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from freshroot.errors import Location
from freshroot.tmpfiles import fields
from freshroot.tmpfiles.messages import EBADSLT, EINVAL, Level, LineError, SkipLine
from freshroot.tmpfiles.model import Age, Item, ItemType, Owner
from freshroot.tmpfiles.specifiers import SpecifierError, Specifiers
from freshroot.tmpfiles.timespan import TimespanError, parse_sec
from freshroot.tmpfiles.words import EscapeError, cunescape, split_fields

MODIFIERS = "!+-=~^$?"
_NO_ARGUMENT = frozenset("dvqQeDpxXrRmzZ")
_EXPAND_ARGUMENT = frozenset("CLfFw")
_TYPES = {t.value: t for t in ItemType}
_NO_BASE64 = {"L": "symlink targets", "C": "copy sources", "c": "device node creation",
              "b": "device node creation", "t": "extended attributes", "T": "extended attributes",
              "a": "ACLs", "A": "ACLs", "h": "file attributes", "H": "file attributes",
              "k": "capabilities", "K": "capabilities"}
_NEEDS_ARGUMENT = {"w": "Write file", "c": "Device file", "b": "Device file", "t": "Set extended attribute",
                   "T": "Set extended attribute", "a": "Set ACLs", "A": "Set ACLs", "h": "Set file attribute",
                   "H": "Set file attribute", "k": "Set capabilities", "K": "Set capabilities"}


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """What parsing tmpfiles.d lines depends on: the root, the mode and the prefixes."""
    root: str = "/"
    user: bool = False
    boot: bool = False
    graceful: bool = False
    include_prefixes: tuple[str, ...] = ()
    exclude_prefixes: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


class Resolver:
    """find_uid()/find_gid(): a number; else NSS when running on the host; else, under --root,
    "root" is 0 and other names come from the root's /etc/passwd and /etc/group."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._accounts: object | None = None
        self._uids: dict[str, int | None] = {}
        self._gids: dict[str, int | None] = {}

    def accounts(self) -> object:
        """The root's /etc/passwd and /etc/group (an Accounts), read once."""
        return self._load()

    def _load(self) -> object:
        if self._accounts is None:
            from freshroot.fs.accounts import Accounts
            from freshroot.fs.ops import open_root

            try:
                fd = open_root(self.root)
            except OSError:
                self._accounts = Accounts()
            else:
                try:
                    self._accounts = Accounts.load(fd)
                finally:
                    os.close(fd)
        return self._accounts

    def uid(self, name: str) -> int | None:
        if name not in self._uids:
            self._uids[name] = self._uid(name)
        return self._uids[name]

    def gid(self, name: str) -> int | None:
        if name not in self._gids:
            self._gids[name] = self._gid(name)
        return self._gids[name]

    def _uid(self, name: str) -> int | None:
        value = fields.parse_id(name)
        if value is not None:
            return value
        if self.root == "/":
            import pwd

            try:
                return pwd.getpwnam(name).pw_uid
            except (KeyError, UnicodeEncodeError):
                return None
        if name == "root":
            return 0
        from freshroot.fs.accounts import Accounts

        accounts = self._load()
        assert isinstance(accounts, Accounts)
        user = accounts.user(name)
        return None if user is None else user.uid

    def _gid(self, name: str) -> int | None:
        value = fields.parse_id(name)
        if value is not None:
            return value
        if self.root == "/":
            import grp

            try:
                return grp.getgrnam(name).gr_gid
            except (KeyError, UnicodeEncodeError):
                return None
        if name == "root":
            return 0
        from freshroot.fs.accounts import Accounts

        accounts = self._load()
        assert isinstance(accounts, Accounts)
        group = accounts.group(name)
        return None if group is None else group.gid


_EMPTY = ("", "-")  # a field left out


class LineParser:
    """Parses lines for one run; holds the specifier table and the uid/gid caches."""

    def __init__(self, options: ParseOptions, warn: list[tuple[Level, str, bool]] | None = None) -> None:
        self.options = options
        self.specifiers = Specifiers(root=options.root, user=options.user, environ=options.environ)
        self.resolver = Resolver(options.root)
        # (level, text, located) messages produced by the last parse_line() that kept the line.
        self.notes: list[tuple[Level, str, bool]] = warn if warn is not None else []
        self._notified = False  # whether an unresolvable specifier was reported already
        # Lines repeat their owners and modes: each field text is worked out once.
        self._owners: dict[tuple[int, bool], Owner] = {}
        self._modes: dict[str, tuple[int, bool, bool] | None] = {}
        self._filtered = bool(options.include_prefixes or options.exclude_prefixes)

    def _note(self, level: Level, text: str, located: bool = True) -> None:
        self.notes.append((level, text, located))

    def _expand(self, text: str, what: str) -> str:
        try:
            return self.specifiers.expand(text)
        except SpecifierError as e:
            if e.noinfo:
                reason = ("Required $XDG_... variable not defined" if self.options.user
                          else "uninitialized /etc/ detected")
                # A notice for the first such line only, and none at all under --root, where an
                # uninitialised /etc is expected (log_unresolvable_specifier()).
                level = Level.DEBUG if self._notified or self.options.root != "/" else Level.NOTICE
                self._note(level, f"Failed to resolve specifier: {reason}, skipping.")
                if not self._notified:
                    self._note(level, "All rules containing unresolvable specifiers will be skipped.", located=False)
                self._notified = True
                raise SkipLine from e
            invalid = str(e) in (EINVAL, EBADSLT)
            raise LineError(f"{what}: {e}", invalid=invalid) from e

    def parse_line(self, line: str, location: Location) -> Item:
        """The Item for ``line``; raises LineError or SkipLine. ``line`` is already stripped."""
        self.notes = []
        opts = self.options
        try:
            words, rest = split_fields(line, 6)
        except EscapeError as e:
            raise LineError(f"Failed to parse line: {EINVAL}") from e
        if len(words) < 2:
            raise LineError("Syntax error.")
        words += [""] * (6 - len(words))
        action, raw_path, mode_s, user_s, group_s, age_s = words
        argument = None if rest is None or rest in _EMPTY else rest

        if not action:
            raise LineError(f"Command too short '{action}'.")
        mods = action[1:]
        if mods and (any(c not in MODIFIERS for c in mods) or len(set(mods)) != len(mods)):
            raise LineError(f"Unknown modifiers in command: {action}")
        if "!" in mods and not opts.boot:
            raise SkipLine(f'Ignoring entry {action} "{raw_path}" because --boot is not specified.')
        letter = action[0]
        unbase64 = "~" in mods

        path = self._expand(raw_path, f"Failed to replace specifiers in '{raw_path}'")
        rel = fields.path_remainder(path, "/var/run") if path.startswith("/var") else None
        if rel:  # below /var/run, not /var/run itself
            new = posixpath.join("/run", rel)
            self._note(Level.NOTICE, "Line references path below legacy directory /var/run/, updating "
                       f"{path} \u2192 {new}; please update the tmpfiles.d/ drop-in file accordingly.")
            path = new
        if not path.startswith("/"):
            raise LineError(f"Path '{path}' not absolute.")
        path = fields.simplify_path(path)

        itype = _TYPES.get(letter)
        if itype is None:
            raise LineError(f"Unknown command type '{letter}'.")
        if letter in _NO_ARGUMENT and argument is not None:
            raise LineError(f"{letter} lines don't take argument fields.")
        what = _NO_BASE64.get(letter)
        if unbase64 and what is not None:
            raise LineError(f"base64 decoding not supported for {what}.")
        needs = _NEEDS_ARGUMENT.get(letter)
        if needs is not None and argument is None:
            raise LineError(f"{needs} requires argument.")
        device = None
        if letter in "cb":
            assert argument is not None
            device = fields.parse_devnum(argument)
            if device is None:
                raise LineError(f"Can't parse device file major/minor '{argument}'.")
        xattrs: list[tuple[str, str]] = []
        if letter in "tT":
            assert argument is not None
            xattrs, warnings = fields.parse_xattrs(argument)
            for w in warnings:
                self._note(Level.WARNING, w, located=False)
        attribute_value = attribute_mask = 0
        if letter in "hH":
            try:
                attribute_value, attribute_mask = fields.parse_attributes(argument, path)
            except ValueError as e:
                raise LineError(str(e), located=False) from e
        if letter in "aA":
            assert argument is not None
            self._check_acl(argument, plus="+" in mods)
        if letter in "kK":
            assert argument is not None
            self._check_caps(argument)
        # After the per-type checks above, as in systemd.
        if "$" in mods and not itype.purgeable:
            raise LineError(f"Purge flag '$' combined with line type '{letter}' which does not support purging.")
        if "?" in mods and itype is not ItemType.CREATE_SYMLINK:
            raise LineError(f"Modifier '?' combined with line type '{letter}' which does not support this modifier.")

        if self._filtered and not self._included(path):
            raise SkipLine()

        if not unbase64:
            if letter in _EXPAND_ARGUMENT and argument is not None:
                try:
                    unescaped = cunescape(argument)
                except EscapeError as e:
                    self._note(Level.ERR, f"Failed to unescape parameter to write: {argument}", located=False)
                    raise LineError(f"Failed to substitute specifiers in argument: {EINVAL}") from e
                argument = self._expand(unescaped, "Failed to substitute specifiers in argument")
            elif xattrs:
                xattrs = [(self._expand(n, "Failed to substitute specifiers in argument"),
                           self._expand(v, "Failed to substitute specifiers in argument")) for n, v in xattrs]

        if letter in "LC" and argument is None:
            argument = posixpath.join("/usr/share/factory", path.lstrip("/"))
        elif letter == "C" and argument is not None and not argument.startswith("/"):
            raise LineError(f"Source path '{argument}' is not absolute.")
        if letter == "C":
            assert argument is not None
            source = fields.simplify_path(fields.join_root(opts.root, argument))
            if not os.path.lexists(source):
                raise SkipLine(f"Copy source path '{source}' does not exist, skipping line.")

        binary = self._credential(argument) if "^" in mods else None
        if unbase64 and (binary is not None or argument is not None):
            data = binary if binary is not None else argument.encode("utf-8", "surrogateescape")  # type: ignore[union-attr]
            try:
                binary = fields.unbase64(data)
            except fields.Base64Error as e:
                raise LineError(f"Failed to base64 decode specified argument '{argument}': {e}",
                                invalid=False) from e

        missing = False
        uid = gid = None
        if user_s not in _EMPTY:
            name = user_s[1:] if user_s.startswith(":") else user_s
            value = self.resolver.uid(name)
            if value is None and opts.graceful:
                shown = fields.join_root(opts.root, path)
                self._note(Level.DEBUG, f"{shown}: user '{name}' not found, not adjusting ownership.")
                missing = True
            elif value is None:
                raise LineError(f"Failed to resolve user '{name}': Unknown user")
            else:
                uid = self._owner(value, user_s.startswith(":"))
        if group_s not in _EMPTY:
            name = group_s[1:] if group_s.startswith(":") else group_s
            value = self.resolver.gid(name)
            if value is None and opts.graceful:
                shown = fields.join_root(opts.root, path)
                self._note(Level.DEBUG, f"{shown}: group '{name}' not found, not adjusting ownership.")
                missing = True
            elif value is None:
                raise LineError(f"Failed to resolve group '{name}': Unknown group")
            else:
                gid = self._owner(value, group_s.startswith(":"))

        mode_set = masked = only_create = False
        if mode_s not in _EMPTY:
            parsed = self._mode(mode_s)
            if parsed is None:
                raise LineError(f"Invalid mode '{mode_s}'.")
            mode, masked, only_create = parsed
            mode_set = True
        else:
            mode = 0o755 if itype.is_directory else 0o644
        if missing and mode & ~0o777:
            self._note(Level.INFO, f"Changing mode 0{mode:o} to 0{mode & 0o777:o} because of changed ownership.")
            mode &= 0o777

        age = self._age(age_s, letter) if age_s not in _EMPTY else None
        return Item(
            type=itype, path=path, location=location,
            plus="+" in mods or letter == "F", boot="!" in mods,  # F is the legacy f+
            allow_failure="-" in mods, try_replace="=" in mods, base64=unbase64,
            credential="^" in mods, purge="$" in mods, if_exists="?" in mods,
            mode=mode, mode_set=mode_set, mode_masked=masked, mode_only_create=only_create,
            uid=uid, gid=gid, age=age, argument=argument, binary=binary, device=device,
            xattrs=tuple((n, v.encode("utf-8", "surrogateescape")) for n, v in xattrs) if xattrs else (),
            attribute_value=attribute_value, attribute_mask=attribute_mask,
        )

    def _check_acl(self, argument: str, *, plus: bool) -> None:
        """parse_acls_from_arg(): a bad ACL is a warning (debug with --graceful), not located,
        and the line then sets nothing (freshroot.tmpfiles.acls parses it again, silently)."""
        from freshroot.errors import ConfigError
        from freshroot.fs import acl
        from freshroot.fs.accounts import Accounts

        accounts = self.resolver.accounts()
        assert isinstance(accounts, Accounts)
        try:
            acl.parse(argument, accounts, want_mask=not plus)
        except ConfigError:
            level = Level.DEBUG if self.options.graceful else Level.WARNING
            self._note(level, f'Failed to parse ACL "{argument}", ignoring: {EINVAL}', located=False)

    def _check_caps(self, argument: str) -> None:
        """parse_caps_from_arg(): a bad capability text is a warning, not located, and the line
        then sets nothing (freshroot.tmpfiles.caps parses it again, silently)."""
        from freshroot.tmpfiles import caps

        try:
            caps.parse(argument)
        except caps.CapabilityTextError as e:
            self._note(Level.WARNING, f'Failed to parse capabilities "{argument}", ignoring: {os.strerror(e.errno)}',
                       located=False)

    def _owner(self, value: int, only_create: bool) -> Owner:
        owner = self._owners.get((value, only_create))
        if owner is None:
            owner = self._owners[(value, only_create)] = Owner(value, only_create=only_create)
        return owner

    def _mode(self, text: str) -> tuple[int, bool, bool] | None:
        """The mode field: (mode, '~' masked, ':' only on creation), None when invalid."""
        if text in self._modes:
            return self._modes[text]
        m = text
        masked = only_create = False
        while m[:1] in ("~", ":"):
            masked = masked or m[0] == "~"
            only_create = only_create or m[0] == ":"
            m = m[1:]
        parsed = fields.parse_mode(m)
        result = None if parsed is None else (parsed, masked, only_create)
        self._modes[text] = result
        return result

    def _included(self, path: str) -> bool:
        """should_include_path(): excluded prefixes win, then included ones, else all."""
        if not self.options.exclude_prefixes and not self.options.include_prefixes:
            return True
        if any(fields.path_startswith(path, p) for p in self.options.exclude_prefixes):
            return False
        if any(fields.path_startswith(path, p) for p in self.options.include_prefixes):
            return True
        return not self.options.include_prefixes

    def _credential(self, name: str | None) -> bytes:
        if name is None:
            raise LineError("Reading from credential requested, but no credential name specified.",
                            invalid=False)
        if not fields.credential_name_valid(name):
            raise LineError(f"Credential name not valid: {name}", invalid=False)
        directory = self.options.environ.get("CREDENTIALS_DIRECTORY", "")
        if not directory.startswith("/"):
            raise SkipLine(f"Credential '{name}' not specified, skipping line.")
        try:
            with open(os.path.join(directory, name), "rb") as f:
                return f.read()
        except FileNotFoundError as e:
            raise SkipLine(f"Credential '{name}' not specified, skipping line.") from e
        except OSError as e:
            raise LineError(f"Failed to read credential '{name}': {e.strerror}", invalid=False,
                            located=False) from e

    def _age(self, text: str, letter: str) -> Age:
        a = text
        keep_first_level = a.startswith("~")
        if keep_first_level:
            a = a[1:]
            if letter == "r":
                raise LineError(f"Age modifier '~' is not supported for {letter} lines.")
        by_file_dir = None
        if ":" in a:
            by, _, a = a.partition(":")
            by_file_dir = fields.parse_age_by(by)
            if by_file_dir is None:
                raise LineError(f"Invalid age-by '{by}'.")
        try:
            usec = parse_sec(a)
        except TimespanError as e:
            raise LineError(f"Invalid age '{a}'.") from e
        if by_file_dir is None:
            return Age(usec, keep_first_level=keep_first_level)
        return Age(usec, by_file_dir[0], by_file_dir[1], keep_first_level)
