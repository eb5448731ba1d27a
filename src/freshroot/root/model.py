"""``[root]``: the declaration of how the root is wiped at every boot, parsed and checked.

``wipe = "btrfs"`` (a fresh snapshot of a blank subvolume, yesterday's root kept),
``wipe = "overlay"`` (the installed root as the read-only lower layer of an overlayfs with a
tmpfs upper) and ``wipe = "tmpfs"`` (a tmpfs root holding a copy of the installed root's top
level, /usr bound read-only from the disk) are done by freshroot's initrd scripts; ``none``,
the default, leaves the wipe to something else (``snapshot=on``, systemd.volatile=).
Whether a root can take ``tmpfs`` is checked against the root itself (freshroot.root.setup).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from freshroot.config.table import Table

KEYS = frozenset({"wipe", "keep", "subvolume", "blank", "old-roots"})
WIPES = ("none", "btrfs", "overlay", "tmpfs")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"([0-9]+)\s*([smhdw])")
# A subvolume path below the btrfs top level: plain names, no "." or ".." steps.
_NAME = re.compile(r"[A-Za-z0-9@_+:.-]+")


@dataclass(frozen=True, slots=True)
class RootWipe:
    """The [root] section: how the root is wiped at every boot."""
    wipe: str  # "none", "btrfs", "overlay" or "tmpfs"
    subvolume: str = "root"  # the root subvolume (rootflags=subvol=...), from the top level
    blank: str = "blank"  # the read-only snapshot every boot's root is made from
    old_roots: str = "old_roots"  # where yesterday's roots are kept, named by date
    keep_count: int | None = None  # keep this many old roots ...
    keep_seconds: int | None = None  # ... or those younger than this

    @property
    def wipes(self) -> bool:
        return self.wipe != "none"

    def keep_text(self) -> str:
        if self.keep_count is not None:
            return f"the newest {self.keep_count}"
        return f"those younger than {self.keep_seconds} s"


DEFAULT_KEEP_SECONDS = 14 * 86400


def parse_duration(text: str) -> int | None:
    """``"14d"``, ``"1w 2d"``, ``"36h"``: seconds; None when it is not one."""
    text = text.strip()
    pos, total = 0, 0
    for match in _DURATION.finditer(text):
        if text[pos:match.start()].strip():
            return None
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if pos and not text[pos:].strip() else None


def _subvolume_path(t: Table, key: str, default: str) -> str:
    value = t.get_str(key, default)
    assert value is not None
    parts = value.strip("/").split("/")
    if not value.strip("/") or any(not _NAME.fullmatch(p) or p in (".", "..") for p in parts):
        raise t.error(f"{t.name(key)} must be a subvolume path below the btrfs top level, like \"{default}\" "
                      f"(letters, digits and @_+:.- between slashes), not {value!r}", key)
    return "/".join(parts)


def parse_root(declaration: Table) -> RootWipe:
    """The ``[root]`` section (``wipe = "none"`` when there is none)."""
    if "root" not in declaration:
        return RootWipe("none")
    t = declaration.get_table("root")
    t.reject_unknown(KEYS)
    wipe = t.get_str("wipe", "none")
    assert wipe is not None
    if wipe not in WIPES:
        raise t.error(f"{t.name('wipe')} must be one of {', '.join(WIPES)}, not {wipe!r}", "wipe")
    if wipe != "btrfs":
        # Old roots and the subvolumes that keep them are the btrfs wipe's alone: accepting
        # keep = 3 with a wipe that keeps nothing would promise what no boot does.
        for key in ("keep", "subvolume", "blank", "old-roots"):
            if key in t:
                what = ("nothing wipes the root" if wipe == "none" else
                        f"wipe = \"{wipe}\" keeps no old root (its changes are in RAM and gone at shutdown)")
                raise t.error(f"{t.name(key)} means something only with wipe = \"btrfs\"; here {what}", key,
                              hint=f"drop {key}, or set wipe = \"btrfs\" (docs/root-wipe.md)")
    keep_count: int | None = None
    keep_seconds: int | None = DEFAULT_KEEP_SECONDS
    if "keep" in t:
        raw = t.raw("keep")
        if isinstance(raw, int) and not isinstance(raw, bool):
            if raw < 1:
                raise t.error(f"{t.name('keep')} must keep at least 1 old root (yesterday's), not {raw}", "keep")
            keep_count, keep_seconds = raw, None
        elif isinstance(raw, str) and (seconds := parse_duration(raw)) is not None and seconds > 0:
            keep_seconds = seconds
        else:
            raise t.error(f"{t.name('keep')} must be a count of old roots (keep = 3) or an age "
                          f"(keep = \"14d\"; units s m h d w), not {raw!r}", "keep")
    subvolume = _subvolume_path(t, "subvolume", "root")
    blank = _subvolume_path(t, "blank", "blank")
    old_roots = _subvolume_path(t, "old-roots", "old_roots")
    names = {"subvolume": subvolume, "blank": blank, "old-roots": old_roots}
    for key in sorted(names, key=lambda k: k not in t):  # blame a key that is written, at its line
        value = names[key]
        for other_key, other in names.items():
            if key != other_key and (value == other or value.startswith(other + "/")):
                raise t.error(f"{t.name(key)} ({value!r}) must not be {t.name(other_key)} or below it", key)
    return RootWipe(wipe, subvolume, blank, old_roots, keep_count, keep_seconds)


def conf_text(root: RootWipe, storages: list[str]) -> str:
    """/etc/freshroot/root-wipe.conf, what the initrd script reads from the root it replaces.

    ``storages`` are written as /etc/fstab spells mount points (octal escapes), so the script
    compares them with fstab's second field as they are.
    """
    lines = [
        "# Written by freshroot from [root]; read by the initrd at every boot. Do not edit:",
        "# change [root] in the declaration and run `freshroot apply`.",
        f"wipe={root.wipe}",
        f"subvolume={root.subvolume}",
        f"blank={root.blank}",
        f"old-roots={root.old_roots}",
        f"keep-count={'' if root.keep_count is None else root.keep_count}",
        f"keep-seconds={'' if root.keep_seconds is None else root.keep_seconds}",
    ]
    lines += [f"storage={fstab_escape(s)}" for s in storages]
    return "\n".join(lines) + "\n"


def fstab_escape(path: str) -> str:
    """A path as fstab(5) writes it: space, tab, newline and backslash as octal escapes."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


def fstab_unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def check(declaration: Table) -> RootWipe:
    """For ``freshroot config check`` (config/sections.py)."""
    return parse_root(declaration)
