"""The field types of the declaration: one parser and one wording of each error.

Every section reads its modes, owners, paths, sizes, durations and the plain text that ends
up in account files or units through these, so ``mode = "0750"`` means the same in
``[persist]``, ``[etc]`` and anywhere else, and a bad value gets the same message
everywhere: ``file:line: persist."/persist".directories[0].mode: ...``. docs/configuration.md
has the table of the types and their rules.

Each type has a pure check (``*_problem(value) -> str | None``: why the value is refused,
or None) and a reader taking a :class:`~freshroot.config.table.Table` and a key (None when the
key is absent, ConfigError naming the line otherwise). The pure checks serve code that has a
value but no Table (the /etc name below /etc, a storage's key, a home from passwd).

Digits are ASCII digits only (``str.isdigit`` is also true for "²" and for fullwidth digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from freshroot.config.table import Table
from freshroot.errors import ConfigError
from freshroot.fs.accounts import Accounts

MODE_MAX = 0o7777
# uid_t and gid_t are 32 bits; (uid_t)-1 means "no id" to chown(2), and the 16-bit -1
# (65535) is refused as well, as systemd's uid_is_valid() refuses both.
ID_MAX = 0xFFFFFFFE
ID_INVALID = frozenset({0xFFFF, 0xFFFFFFFF})
NAME_MAX = 255  # bytes of one path component
PATH_MAX = 4096  # a valid path is shorter than this (systemd's path_is_valid)
ACCOUNT_NAME_MAX = 32  # shadow-utils' and systemd-sysusers' limit for user and group names

Kind = Literal["user", "group"]

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _say(t: Table, keys: tuple[str | int, ...], problem: str) -> str:
    """One wording: ``name must be ...`` for a wrong kind of value, ``name: 'v' is ...`` else."""
    return f"{t.name(*keys)} {problem}" if problem.startswith("must ") else f"{t.name(*keys)}: {problem}"


def _type_name(value: object) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


# --- mode ---------------------------------------------------------------------------------

_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o0007}
_PERM = {"r": 0o0444, "w": 0o0222, "x": 0o0111, "s": 0o6000, "t": 0o1000}


def symbolic_mode(text: str) -> int | None:
    """The octal mode a symbolic assignment such as ``u=rwx,g=rx,o=`` stands for, or None.

    Only absolute clauses (``who=perms``) have a mode without a file to apply them to; a
    relative one (``u+x``) is None. Used for the hint of a refused symbolic mode: the
    declaration takes octal modes only, so one value reads the same in every section and
    in tmpfiles.d.
    """
    mode = 0
    for clause in text.split(","):
        who, eq, perms = clause.partition("=")
        if not eq or not who or set(who) - set("ugoa") or set(perms) - set(_PERM):
            return None
        mask = 0
        for w in who.replace("a", "ugo"):
            mask |= _WHO[w]
        bits = 0
        for p in perms:
            bits |= _PERM[p]
        if "t" in perms and "o" not in who.replace("a", "ugo"):
            return None  # the sticky bit belongs to o= (or a=), as chmod reads it
        mode = (mode & ~mask) | (bits & (mask | (0o1000 if "t" in perms else 0)))
    return mode


def mode_problem(value: object) -> str | None:
    """Why ``value`` (as TOML gave it) is not a file mode, or None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return f'must be an octal mode such as "0755", not {_type_name(value)}'
    if isinstance(value, str):
        if not value or not all(c in "01234567" for c in value):
            return f'must be an octal mode such as "0755", not {value!r}'
        value = int(value, 8)
    if value < 0 or value > MODE_MAX:
        return f"{value if value < 0 else oct(value)[2:]} is not a file mode (0 to 7777 in octal)"
    return None


def to_mode(value: int | str) -> int:
    """A value :func:`mode_problem` accepted, as an int."""
    return int(value, 8) if isinstance(value, str) else value


def mode(t: Table, key: str = "mode", default: int | None = None) -> int | None:
    """An octal mode: a string of octal digits (``"0750"``) or a TOML integer (``0o750``).

    Symbolic modes are refused with the octal to write instead; negative numbers, numbers
    over 07777, bools, floats and non-octal strings are refused.
    """
    if key not in t:
        return default
    value = t.raw(key)
    problem = mode_problem(value)
    if problem is None:
        assert isinstance(value, int | str)
        return to_mode(value)
    hint = "modes are octal digits: \"0755\" is rwxr-xr-x, \"0640\" is rw-r-----"
    if isinstance(value, str) and (symbolic := symbolic_mode(value)) is not None:
        hint = f'symbolic modes are not read here: write mode = "{symbolic:04o}" for {value!r}'
    elif isinstance(value, str) and value[:2] in ("0o", "0O") and mode_problem(value[2:]) is None:
        hint = f'write mode = "0{value[2:]}" (octal digits in a string) or mode = {value} (a TOML integer)'
    elif isinstance(value, int) and not isinstance(value, bool) and value > MODE_MAX:
        hint = "a TOML integer is decimal unless written 0o755; or write the mode as a string, \"0755\""
    raise t.error(_say(t, (key,), problem), key, hint=hint)


# --- ids, names and owners ------------------------------------------------------------------


def id_problem(value: int) -> str | None:
    if value < 0 or value > ID_MAX or value in ID_INVALID:
        return f"{value} is not a valid id (0 to {ID_MAX}, and not 65535)"
    return None


def account_name_problem(name: str) -> str | None:
    """Why ``name`` is not a user or group name useradd/groupadd accept by default, or None.

    The rule of shadow-utils 4.14 (and systemd-sysusers' relaxed one, in ASCII):
    ``[A-Za-z0-9_][A-Za-z0-9_.-]*`` with an optional final ``$`` (Samba machine accounts), not
    all digits (it would read as an id), at most 32 characters. So no ':', ',', white
    space, newline or NUL, which would split a line of passwd/group/shadow/gshadow.
    """
    if not name:
        return "is empty"
    if len(name) > ACCOUNT_NAME_MAX:
        return f"is longer than {ACCOUNT_NAME_MAX} characters"
    if not _ACCOUNT_NAME.fullmatch(name) or not name.isascii():
        return "is not a valid name (ASCII letters, digits, '_', '.' and '-', not starting with '.' or '-')"
    if _ascii_digits(name.rstrip("$")):
        return "is all digits, which reads as an id"
    return None


_NAME_HINT = "ASCII letters, digits, '_', '.', '-'; not all digits; at most 32 characters"


def account_name(t: Table, value: object, what: str, *keys: str | int) -> str:
    """``value``, found at ``keys`` below ``t``, as a user or group name (``what``: which).

    ``keys`` may end at the name itself (``[users.<name>]``: ``t`` is ``users``, the key is
    the name) or at a value (``group = "<name>"``).
    """
    if not isinstance(value, str):
        raise t.error(f"{t.name(*keys)} must be a {what} name, not {_type_name(value)}", *keys)
    problem = account_name_problem(value)
    if problem is not None:
        raise t.error(f"{t.name(*keys)}: {what} name {value!r} {problem}", *keys, hint=_NAME_HINT)
    return value


def account_names(t: Table, key: str, what: str) -> tuple[str, ...]:
    """An array of user or group names (``members``, ``extra-groups``)."""
    return tuple(account_name(t, v, what, key, i) for i, v in enumerate(t.get_list(key)))


@dataclass(frozen=True, slots=True)
class Owner:
    """A user or group as declared: a name, or a numeric id. Resolving a name to an id is
    :func:`resolve`'s job (against a root's passwd/group, or the declaration's own users)."""

    name: str | None = None
    id: int | None = None

    def __str__(self) -> str:
        return self.name if self.name is not None else str(self.id)


def owner_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return f"must be a name or a numeric id, not {_type_name(value)}"
    if isinstance(value, int):
        return id_problem(value)
    if _ascii_digits(value):
        return id_problem(int(value))
    problem = account_name_problem(value)
    return None if problem is None else f"{value!r} {problem}"


def to_owner(value: int | str) -> Owner:
    """A value :func:`owner_problem` accepted."""
    if isinstance(value, int):
        return Owner(id=value)
    return Owner(id=int(value)) if _ascii_digits(value) else Owner(name=value)


def owner(t: Table, key: str, default: Owner | None = None) -> Owner | None:
    """A user or group: a name (``"app"``) or an id (``1000`` or ``"1000"``)."""
    if key not in t:
        return default
    value = t.raw(key)
    problem = owner_problem(value)
    if problem is not None:
        raise t.error(_say(t, (key,), problem), key,
                      hint="a name (ASCII letters, digits, '_', '.', '-') or a number from 0 to 4294967294")
    assert isinstance(value, int | str)
    return to_owner(value)


def resolve(o: Owner, kind: Kind, accounts: Accounts) -> int | None:
    """The id of ``o``: its own, or its name's in ``accounts``; None for an unknown name."""
    if o.id is not None:
        return o.id
    assert o.name is not None
    if kind == "user":
        user = accounts.user(o.name)
        return None if user is None else user.uid
    group = accounts.group(o.name)
    return None if group is None else group.gid


# --- paths --------------------------------------------------------------------------------


def path_problem(path: str, *, relative: bool = False) -> str | None:
    """Why ``path`` cannot be a declared path, or None.

    A declared path is absolute (or, with ``relative``, relative: below a user's home) and
    canonical (no '.', '..', doubled or trailing '/'), and a unit file must be able to carry
    it as What=/Where= and systemd must be able to name a unit after it: no control
    character (NUL, newline, tab...), no trailing white space or backslash (systemd strips the one
    and reads the other as a line continuation), components of at most 255 bytes, shorter
    than 4096 bytes.
    """
    if "\0" in path:
        return "contains a NUL byte"
    if (bad := _CONTROL.search(path)) is not None:
        return f"contains a control character ({bad.group()!r})"
    if relative:
        if path.startswith("/"):
            return "must be relative to the user's home"
    elif not path.startswith("/"):
        return "must be an absolute path"
    body = path.strip("/") if not relative else path
    if not body:
        return "names no entry"
    if path.endswith("/") or "//" in path:
        return "is not canonical (no trailing or doubled '/')"
    if any(c in (".", "..") for c in body.split("/")):
        return "is not canonical (no '.' or '..' components)"
    if path[-1].isspace() or path.endswith("\\"):
        # (any white space: unit.render_value refuses what str.strip() would remove)
        return "ends in white space or a backslash, which a unit file cannot carry"
    data = path.encode("utf-8", "surrogateescape")
    if any(len(c) > NAME_MAX for c in data.split(b"/")):
        return f"has a component longer than {NAME_MAX} bytes"
    if len(data) >= PATH_MAX:
        return f"is {PATH_MAX} bytes or longer"
    return None


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string, for hints that say what to write."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def canonical_hint(path: str, *, relative: bool = False) -> str | None:
    """What to write instead of a non-canonical ``path`` ('/var/log/' -> write "/var/log"), as
    a hint; None when nothing lexical can fix it ('..' is left to the user: what it means
    depends on symlinks on the way)."""
    parts = [c for c in path.split("/") if c not in ("", ".")]
    if ".." in parts or not parts:
        return "write the path without '..' components" if ".." in parts else None
    fixed = "/".join(parts) if relative else "/" + "/".join(parts)
    return None if fixed == path or path_problem(fixed, relative=relative) else f"write {toml_string(fixed)}"


def path(t: Table, key: str | int, value: object, *, relative: bool = False) -> str:
    """``value`` found at ``key`` of ``t`` as a declared path (see :func:`path_problem`)."""
    if not isinstance(value, str):
        raise t.error(f"{t.name(key)} must be a path, not {_type_name(value)}", key)
    problem = path_problem(value, relative=relative)
    if problem is not None:
        raise t.error(f"{t.name(key)}: {value!r} {problem}", key, hint=canonical_hint(value, relative=relative))
    return value


def opt_path(t: Table, key: str, *, relative: bool = False) -> str | None:
    return path(t, key, t.raw(key), relative=relative) if key in t else None


# --- text ---------------------------------------------------------------------------------


def text_problem(value: str, forbidden: str = "") -> str | None:
    """Why ``value`` cannot be written into one line of an account file or a unit: a control
    character (NUL, newline...), or one of ``forbidden`` (':' separates fields)."""
    if (bad := _CONTROL.search(value)) is not None:
        return f"contains a control character ({bad.group()!r})"
    for c in forbidden:
        if c in value:
            return f"contains {c!r}"
    return None


def text(t: Table, key: str, forbidden: str = "", default: str | None = None) -> str | None:
    """A one-line text value (a description, a hashed password): no control characters and
    none of ``forbidden``."""
    value = t.get_str(key, default)
    if value is None:
        return None
    problem = text_problem(value, forbidden)
    if problem is not None:
        raise t.error(_say(t, (key,), problem), key)
    return value


# --- sizes and durations --------------------------------------------------------------------

_SIZE = re.compile(r"([0-9]+)[ \t]*([KMGT]?)(?:i?B)?", re.IGNORECASE)
_SIZE_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


def size_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return f"must be a size such as \"1M\" or 4096, not {_type_name(value)}"
    if isinstance(value, int):
        return None if value >= 0 else f"{value} is not a size"
    if _SIZE.fullmatch(value.strip()) is None or not value.strip().isascii():
        return f"must be a size such as \"1M\", \"128K\" or \"4096\", not {value!r}"
    return None


def to_size(value: int | str) -> int:
    if isinstance(value, int):
        return value
    m = _SIZE.fullmatch(value.strip())
    assert m is not None
    return int(m.group(1)) << _SIZE_SHIFT[m.group(2).lower()]


def size(t: Table, key: str, default: int | None = None) -> int | None:
    """A size in bytes: an integer, or a string with a suffix K, M, G, T (powers of 1024)."""
    if key not in t:
        return default
    value = t.raw(key)
    problem = size_problem(value)
    if problem is not None:
        raise t.error(_say(t, (key,), problem), key)
    assert isinstance(value, int | str)
    return to_size(value)


def duration(t: Table, key: str, default: int | None = None) -> int | None:
    """A duration in microseconds: systemd's time span syntax (``"90s"``, ``"1h 30min"``, a
    bare number is seconds) or a TOML integer of seconds."""
    if key not in t:
        return default
    value = t.raw(key)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise t.error(f"{t.name(key)}: {value} is not a duration", key)
        return value * 1_000_000
    if not isinstance(value, str) or _CONTROL.search(value):
        raise t.error(f"{t.name(key)} must be a duration such as \"90s\" or \"1h 30min\"", key)
    from freshroot.tmpfiles.timespan import parse_sec

    try:
        return parse_sec(value)
    except ValueError:
        raise t.error(f"{t.name(key)} must be a duration such as \"90s\" or \"1h 30min\", not {value!r}",
                      key) from None


def mount_option_problem(option: str) -> str | None:
    """Why ``option`` cannot be one item of a mount's options (joined with ',' in
    Options= and in mount(8)'s option string), or None."""
    if not option:
        return "is empty"
    if (bad := _CONTROL.search(option)) is not None:
        return f"contains a control character ({bad.group()!r})"
    if "," in option:
        return "contains ',': give one option per array item"
    if option != option.strip() or "\\" in option:
        return "contains white space at an end or a backslash"
    return None


def mount_options(t: Table, key: str) -> tuple[str, ...]:
    """An array of mount options, one option per item (see :func:`mount_option_problem`)."""
    items = t.get_str_list(key)
    for i, option in enumerate(items):
        problem = mount_option_problem(option)
        if problem is not None:
            raise t.error(f"{t.name(key, i)}: mount option {option!r} {problem}", key, i)
    return tuple(items)


__all__ = [
    "ConfigError", "Owner", "account_name", "account_name_problem", "account_names", "duration", "id_problem",
    "mode", "mode_problem", "mount_option_problem", "mount_options", "owner", "owner_problem", "path",
    "path_problem", "resolve", "size", "symbolic_mode", "text", "text_problem",
]
