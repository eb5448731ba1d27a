"""The % specifiers of tmpfiles.d, resolved as systemd-tmpfiles 262 resolves them.

Under --root, what describes the *installed system* comes from the root (/etc/machine-id,
os-release), while what describes the *running machine* comes from the running kernel (%b boot
id, %H/%l/%q host name, %v kernel release, %a architecture), exactly as systemd does it. The
directory specifiers (%C %L %S %t %D) give the plain system paths, which are then joined to the
root like any other path. Values are computed lazily and cached per Specifiers object.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# uname -m -> systemd's architecture name (the ones systemd knows; others pass through).
_ARCH = {
    "x86_64": "x86-64", "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86",
    "aarch64": "arm64", "aarch64_be": "arm64-be", "armv7l": "arm", "armv6l": "arm", "armv8l": "arm",
    "riscv64": "riscv64", "riscv32": "riscv32", "ppc64le": "ppc64-le", "ppc64": "ppc64", "ppc": "ppc",
    "ppcle": "ppc-le", "s390x": "s390x", "s390": "s390", "mips64": "mips64", "mips": "mips",
    "loongarch64": "loongarch64", "alpha": "alpha", "ia64": "ia64", "parisc64": "parisc64",
    "parisc": "parisc", "sparc64": "sparc64", "sparc": "sparc", "sh": "sh", "m68k": "m68k",
    "arc": "arc", "tilegx": "tilegx", "cris": "cris", "nios2": "nios2",
}


class SpecifierError(ValueError):
    """A specifier that cannot be expanded; ``noinfo`` means systemd skips the line instead."""

    def __init__(self, message: str, *, noinfo: bool = False) -> None:
        super().__init__(message)
        self.noinfo = noinfo


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20).decode("utf-8", "surrogateescape")
    except OSError:
        return None


def _env_file(text: str) -> dict[str, str]:
    """KEY=value lines (os-release, machine-info), with shell-like quotes removed."""
    from freshroot.tmpfiles.words import EscapeError, extract_first_word

    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            word, _ = extract_first_word(value, 0)
        except EscapeError:
            word = value
        out[key.strip()] = word or ""
    return out


@dataclass
class Specifiers:
    """The specifier table for one run: ``root`` is the --root directory ("/" when none)."""

    root: str = "/"
    user: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _cache: dict[str, str] = field(default_factory=dict, repr=False)

    def _read_in_root(self, path: str) -> str | None:
        """A file of the installed system, reached with chase() below the root: a symlink in
        it (an absolute one too) resolves inside the root, as systemd's chase with
        CHASE_PREFIX_ROOT does; anything but a regular file (a FIFO) is not read."""
        import stat

        from freshroot.errors import UnsafePathError
        from freshroot.fs import ops
        from freshroot.fs.chase import chase

        try:
            root_fd = ops.open_root(self.root)
        except OSError:
            return None
        try:
            with chase(path, root_fd=root_fd) as c:
                st = os.fstat(c.fd)
                if not stat.S_ISREG(st.st_mode):
                    return None
                return ops.read_opath(c.fd, st, 1 << 20).decode("utf-8", "surrogateescape")
        except (OSError, UnsafePathError):
            return None
        finally:
            os.close(root_fd)

    def _os_release(self) -> dict[str, str]:
        for p in ("/etc/os-release", "/usr/lib/os-release"):
            text = self._read_in_root(p)
            if text is not None:
                return _env_file(text)
        raise SpecifierError("no os-release", noinfo=True)

    def _os_field(self, key: str) -> str:
        return self._os_release().get(key, "")

    def _machine_id(self) -> str:
        text = self._read_in_root("/etc/machine-id")
        if text is None or not text.strip() or text.strip() == "uninitialized":
            raise SpecifierError("machine id not set", noinfo=True)
        mid = text.strip()
        if len(mid) != 32 or any(c not in "0123456789abcdef" for c in mid) or mid == "0" * 32:
            raise SpecifierError("Structure needs cleaning")
        return mid

    def _hostname(self) -> str:
        return os.uname().nodename

    def _pretty_hostname(self) -> str:
        text = _read_text("/etc/machine-info")
        pretty = _env_file(text).get("PRETTY_HOSTNAME", "") if text is not None else ""
        return pretty or self._hostname()

    def _boot_id(self) -> str:
        text = _read_text("/proc/sys/kernel/random/boot_id")
        if text is None:
            raise SpecifierError("No such file or directory")
        return text.strip().replace("-", "")

    def _env_home(self) -> str | None:
        """$HOME as systemd's get_home_dir() takes it: only if absolute and normalised."""
        home = self.environ.get("HOME", "")
        if not home.startswith("/") or any(c in ("", ".", "..") for c in home.split("/")[1:-1]) \
                or home.endswith(("/.", "/..")) or "//" in home:
            return None
        return home.rstrip("/") or "/"

    def _account(self) -> tuple[str, int, str, int, str]:
        """(user name, uid, group name, gid, home) of the scope's user. %h is get_home_dir()
        in both scopes: $HOME when it is a clean absolute path, else /root for root."""
        if not self.user:
            return "root", 0, "root", 0, self._env_home() or "/root"
        uid = os.getuid()
        gid = os.getgid()
        try:
            pw = pwd.getpwuid(uid)
            name, home = pw.pw_name, self._env_home() or ("/root" if uid == 0 else pw.pw_dir)
        except KeyError:
            name, home = str(uid), self._env_home() or ""
        import grp

        try:
            gname = grp.getgrgid(gid).gr_name
        except KeyError:
            gname = str(gid)
        return name, uid, gname, gid, home

    def _xdg(self, var: str, fallback: str) -> str:
        value = self.environ.get(var, "")
        if value.startswith("/"):
            return value
        home = self._account()[4]
        if not home.startswith("/"):
            raise SpecifierError(f"${var} not set", noinfo=True)
        return os.path.join(home, fallback)

    def _directory(self, which: str) -> str:
        if not self.user:
            return {"C": "/var/cache", "L": "/var/log", "S": "/var/lib", "t": "/run", "D": "/usr/share"}[which]
        if which == "t":
            value = self.environ.get("XDG_RUNTIME_DIR", "")
            if not value.startswith("/"):
                raise SpecifierError("$XDG_RUNTIME_DIR not set", noinfo=True)
            return value
        if which == "C":
            return self._xdg("XDG_CACHE_HOME", ".cache")
        if which == "S":
            return self._xdg("XDG_STATE_HOME", ".local/state")
        if which == "L":
            return os.path.join(self._xdg("XDG_STATE_HOME", ".local/state"), "log")
        return self._xdg("XDG_DATA_HOME", ".local/share")

    def _tmp(self, var_tmp: bool) -> str:
        if self.root != "/":
            return "/var/tmp" if var_tmp else "/tmp"
        for var in ("TMPDIR", "TEMP", "TMP"):
            # tmp_dir(): an absolute, normalised path to an existing directory, else ignored.
            value = self.environ.get(var, "")
            if value.startswith("/") and os.path.normpath(value) == value.rstrip("/") and os.path.isdir(value):
                return value
        return "/var/tmp" if var_tmp else "/tmp"

    def _table(self) -> dict[str, Callable[[], str]]:
        return {
            "a": lambda: _ARCH.get(os.uname().machine, os.uname().machine),
            "A": lambda: self._os_field("IMAGE_VERSION"),
            "b": self._boot_id,
            "B": lambda: self._os_field("BUILD_ID"),
            "C": lambda: self._directory("C"),
            "D": lambda: self._directory("D"),
            "g": lambda: self._account()[2],
            "G": lambda: str(self._account()[3]),
            "h": lambda: self._account()[4],
            "H": self._hostname,
            "l": lambda: self._hostname().split(".", 1)[0],
            "L": lambda: self._directory("L"),
            "m": self._machine_id,
            "M": lambda: self._os_field("IMAGE_ID"),
            "o": lambda: self._os_field("ID"),
            "q": self._pretty_hostname,
            "S": lambda: self._directory("S"),
            "t": lambda: self._directory("t"),
            "T": lambda: self._tmp(var_tmp=False),
            "u": lambda: self._account()[0],
            "U": lambda: str(self._account()[1]),
            "v": lambda: os.uname().release,
            "V": lambda: self._tmp(var_tmp=True),
            "w": lambda: self._os_field("VERSION_ID"),
            "W": lambda: self._os_field("VARIANT_ID"),
        }

    def value(self, letter: str) -> str:
        cached = self._cache.get(letter)
        if cached is not None:
            return cached
        fn = self._table().get(letter)
        if fn is None:
            raise SpecifierError("Invalid slot")
        result = fn()
        self._cache[letter] = result
        return result

    def expand(self, text: str, max_length: int = 4095) -> str:
        """systemd's specifier_printf(): '%%' is '%', a stray '%' at the end stays."""
        if "%" not in text:
            if len(text) > max_length:
                raise SpecifierError("File name too long")
            return text
        out: list[str] = []
        percent = False
        for c in text:
            if percent:
                percent = False
                out.append("%" if c == "%" else self.value(c))
            elif c == "%":
                percent = True
            else:
                out.append(c)
        if percent:
            out.append("%")
        result = "".join(out)
        if len(result.encode("utf-8", "surrogateescape")) > max_length:
            raise SpecifierError("File name too long")
        return result


SPECIFIER_LETTERS = "aAbBCDgGhHlLmMoqStTuUvVwW"
