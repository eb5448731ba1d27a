"""Which tmpfiles.d files are read, in which order, as systemd's conf_files_list() decides.

Files named ``*.conf`` in the configuration directories (under --root); a name in an earlier
directory hides the same name in later ones; a symlink to /dev/null hides it and is not listed;
an empty file hides it and is listed as a mask; the rest is ordered by file name.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from freshroot.tmpfiles.fields import join_root

SYSTEM_DIRS = ("/etc/tmpfiles.d", "/run/tmpfiles.d", "/usr/local/lib/tmpfiles.d", "/usr/lib/tmpfiles.d")


def user_dirs(environ: Mapping[str, str]) -> tuple[str, ...]:
    """user_config_paths(), highest priority first: the config home, $XDG_CONFIG_DIRS, the
    runtime dir, the data home, $XDG_DATA_DIRS (each with /user-tmpfiles.d)."""
    home = environ.get("HOME", "")

    def xdg(var: str, fallback: str) -> list[str]:
        value = environ.get(var, "")
        if value.startswith("/"):
            return [value]
        return [os.path.join(home, fallback)] if home.startswith("/") else []

    def dirs(var: str, default: str) -> list[str]:
        value = environ.get(var, "") or default
        return [d for d in value.split(":") if d.startswith("/")]

    runtime = environ.get("XDG_RUNTIME_DIR", "")
    found = [*xdg("XDG_CONFIG_HOME", ".config"), *dirs("XDG_CONFIG_DIRS", "/etc/xdg"),
             *([runtime] if runtime.startswith("/") else []), *xdg("XDG_DATA_HOME", ".local/share"),
             *dirs("XDG_DATA_DIRS", "/usr/local/share:/usr/share")]
    return tuple(os.path.join(d, "user-tmpfiles.d") for d in found)


@dataclass(frozen=True, slots=True)
class ConfFile:
    """One file in the list: its path as systemd prints it (root joined), and whether it is an
    empty mask (listed by --cat-config, nothing to read)."""

    name: str
    path: str
    mask: bool = False


def _is_devnull(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def list_files(root: str, dirs: tuple[str, ...], replace: str | None = None) -> tuple[list[ConfFile], str | None]:
    """conf_files_list_with_replacement(): the ordered files, and the path (root joined) at which
    the command-line files replace a file when ``replace`` is given."""
    found: dict[str, ConfFile | None] = {}
    for d in dirs:
        full = join_root(root, d)
        try:
            names = sorted(os.listdir(full))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".conf") or name.startswith(".") or name in found:
                continue
            path = os.path.join(full, name)
            if _is_devnull(path):
                found[name] = None  # masked: hides later ones, not listed
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            found[name] = ConfFile(name, path, mask=st.st_size == 0)
    replace_path = None
    if replace is not None:
        name = os.path.basename(replace)
        replace_path = join_root(root, replace)
        found[name] = ConfFile(name, replace_path)
    files = [f for _, f in sorted(found.items()) if f is not None]
    return files, replace_path


def cat_config(files: list[ConfFile], *, tldr: bool) -> str:
    """What --cat-config / --tldr print (systemd's cat_files())."""
    from freshroot.tmpfiles.lines import tldr_lines

    out: list[str] = []
    for i, f in enumerate(files):
        if i:
            out.append("\n")
        if f.mask:
            out.append(f"# {f.path} is a mask.\n")
            continue
        out.append(f"# {f.path}\n")
        try:
            with open(f.path, "rb") as fh:
                data = fh.read()
        except OSError as e:
            out.append(f"# Failed to read {f.path}: {e.strerror}\n")
            continue
        if tldr:
            out.extend(f"{line}\n" for line in tldr_lines(data))
        else:
            text = data.decode("utf-8", "surrogateescape")
            out.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(out)
