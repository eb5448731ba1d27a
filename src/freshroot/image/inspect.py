"""Look inside a portable image without root: its units, os-release and contents.

squashfs is read with ``unsquashfs -lln`` (the listing) and ``unsquashfs -cat`` (file
contents); erofs with ``fsck.erofs --extract`` into a private scratch directory, since
erofs-utils 1.5 has no listing command that recurses. Neither needs a loop device or a
mount. Units are found where systemd's portable logic looks for them (the system unit
search path inside the image) and are checked with its attach rule.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from typing import assert_never

from freshroot import run as runner
from freshroot.errors import FreshrootError, OperationError, os_error_message
from freshroot.fs import ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.image.model import ImageFormat
from freshroot.image.stage import parse_os_release
from freshroot.image.units import PORTABLE_UNIT_SUFFIXES, unit_match

# The system unit search path, as portable.c walks it inside the image.
UNIT_DIRS = ("etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system",
             "usr/lib/systemd/system", "lib/systemd/system")
OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
EROFS_MAGIC = 0xE0F5E1E2
_LISTING = re.compile(
    r"^([-dlcbps])([-rwxsStT]{9}) (\d+)/(\d+)\s+(\d+|\d+,\s*\d+) \d{4}-\d\d-\d\d \d\d:\d\d (.*)$")
_KINDS = {"-": "file", "d": "directory", "l": "symlink", "c": "char", "b": "block", "p": "fifo", "s": "socket"}
_KIND_CHARS = {v: k for k, v in _KINDS.items()}


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of a portable image."""
    path: str  # relative to the image root, "" for the root itself
    kind: str
    mode: int
    uid: int | None  # None where the reader cannot tell (erofs extracted without root)
    gid: int | None
    size: int
    target: str | None = None


@dataclass(frozen=True)
class Inspection:
    """What a portable image holds."""
    image: str
    format: ImageFormat
    os_release: dict[str, str]
    entries: tuple[Entry, ...]
    units: tuple[str, ...] = field(default=())

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(self.os_release.get("PORTABLE_PREFIXES", "").split())

    @property
    def portable(self) -> bool:
        """What systemd-dissect calls a portable service: os-release with PORTABLE_PREFIXES."""
        return bool(self.prefixes)

    def attachable(self, unit: str) -> bool:
        return unit_match(unit, self.prefixes or (image_name(self.image),))

    def to_json(self) -> dict[str, object]:
        return {
            "image": self.image, "format": str(self.format), "portable": self.portable,
            "prefixes": list(self.prefixes), "os_release": self.os_release,
            "units": [{"name": u, "attachable": self.attachable(u)} for u in self.units],
            "contents": [
                {"path": "/" + e.path, "type": e.kind, "mode": f"{e.mode:04o}", "uid": e.uid, "gid": e.gid,
                 "size": e.size, **({"target": e.target} if e.target is not None else {})}
                for e in self.entries
            ],
        }


def image_name(path: str) -> str:
    """portablectl's default match: the file name without .raw and without _VERSION."""
    base = os.path.basename(path)
    base = base.removesuffix(".raw")
    return base.split("_", 1)[0]


def detect_format(path: str) -> ImageFormat:
    try:
        with open(path, "rb") as f:
            head = f.read(1028)
    except OSError as e:
        raise OperationError(f"cannot read image: {os_error_message(e)}") from e
    if head[:4] == b"hsqs":
        return ImageFormat.SQUASHFS
    if len(head) >= 1028 and int.from_bytes(head[1024:1028], "little") == EROFS_MAGIC:
        return ImageFormat.EROFS
    raise FreshrootError(f"{path}: neither a squashfs nor an erofs image")


def _mode(perms: str) -> int:
    mode = 0
    for i, c in enumerate(perms):
        if c not in "-ST":
            mode |= 1 << (8 - i)
    for i, special in ((2, stat.S_ISUID), (5, stat.S_ISGID), (8, stat.S_ISVTX)):
        if perms[i] in "sStT":
            mode |= special
    return mode


def parse_unsquashfs_listing(text: str) -> list[Entry]:
    """``unsquashfs -lln -d ''`` output, one Entry per line."""
    out = []
    for line in text.splitlines():
        m = _LISTING.match(line)
        if m is None:
            continue
        kind_c, perms, uid, gid, size, rest = m.groups()
        target = None
        if kind_c == "l":
            rest, _, target = rest.partition(" -> ")
        out.append(Entry(rest.lstrip("/"), _KINDS[kind_c], _mode(perms), int(uid), int(gid),
                         0 if "," in size else int(size), target))
    return out


def _resolve(entries: dict[str, Entry], path: str) -> str | None:
    """Resolve ``path`` component by component inside the image (symlinks never leave it) to a
    regular file's symlink-free path, as systemd reads os-release from an image."""
    todo = [p for p in path.split("/") if p and p != "."]
    todo.reverse()
    names: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if names:
                names.pop()
            continue
        entry = entries.get("/".join([*names, part]))
        if entry is None:
            return None
        if entry.kind == "symlink" and entry.target is not None:
            links += 1
            if links > 40:
                return None
            if entry.target.startswith("/"):
                names = []
            todo.extend(reversed([p for p in entry.target.split("/") if p and p != "."]))
            continue
        names.append(part)
        if todo and entry.kind != "directory":
            return None
    real = "/".join(names)
    found = entries.get(real)
    return real if found is not None and found.kind == "file" else None


def _units(entries: dict[str, Entry]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for d in UNIT_DIRS:
        for path, entry in entries.items():
            name = path[len(d) + 1:]
            if (os.path.dirname(path) == d and entry.kind in ("file", "symlink")
                    and name.endswith(PORTABLE_UNIT_SUFFIXES)):
                found.setdefault(name, None)
    return tuple(sorted(found))


def inspect_squashfs(path: str) -> Inspection:
    listing = runner.run(["unsquashfs", "-lln", "-d", "", path]).stdout
    entries = parse_unsquashfs_listing(listing)
    by_path = {e.path: e for e in entries}
    os_release: dict[str, str] = {}
    for candidate in OS_RELEASE_PATHS:
        real = _resolve(by_path, candidate)
        if real is not None:
            os_release = parse_os_release(runner.run(["unsquashfs", "-cat", path, real]).stdout)
            break
    return Inspection(path, ImageFormat.SQUASHFS, os_release, tuple(entries), _units(by_path))


def inspect_erofs(path: str) -> Inspection:
    scratch = tempfile.mkdtemp(prefix="freshroot-inspect-")
    try:
        tree = os.path.join(scratch, "root")
        runner.run(["fsck.erofs", f"--extract={tree}", path])
        as_root = os.geteuid() == 0
        entries = []
        for dirpath, dirnames, filenames in os.walk(tree):
            dirnames.sort()
            for name in ["", *sorted(dirnames + filenames)] if dirpath == tree else sorted(dirnames + filenames):
                full = os.path.join(dirpath, name) if name else dirpath
                st = os.lstat(full)
                rel = os.path.relpath(full, tree)
                kind = _KINDS.get(stat.filemode(st.st_mode)[0], "file")
                entries.append(Entry(
                    "" if rel == "." else rel, kind, stat.S_IMODE(st.st_mode),
                    st.st_uid if as_root else None, st.st_gid if as_root else None,
                    st.st_size if kind in ("file", "symlink") else 0,
                    os.readlink(full) if kind == "symlink" else None))
        by_path = {e.path: e for e in entries}
        os_release: dict[str, str] = {}
        for candidate in OS_RELEASE_PATHS:
            real = _resolve(by_path, candidate)
            if real is not None:
                # Through chase below the extracted tree: the image's symlinks cannot reach the host.
                tree_fd = ops.open_root(tree)
                try:
                    with chase(real, root_fd=tree_fd, flags=ChaseFlags.NOFOLLOW) as found:
                        fd = ops.reopen(found.fd, os.O_RDONLY)
                    try:
                        os_release = parse_os_release(ops.read_fd(fd, 1 << 20).decode("utf-8", "surrogateescape"))
                    finally:
                        os.close(fd)
                finally:
                    os.close(tree_fd)
                break
        return Inspection(path, ImageFormat.EROFS, os_release, tuple(entries), _units(by_path))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def inspect_image(path: str) -> Inspection:
    fmt = detect_format(path)
    match fmt:
        case ImageFormat.SQUASHFS:
            return inspect_squashfs(path)
        case ImageFormat.EROFS:
            return inspect_erofs(path)
        case _:
            assert_never(fmt)


def format_text(info: Inspection) -> str:
    lines = [f"     Image: {info.image} ({info.format})"]
    release = [f"{k}={v}" for k, v in info.os_release.items()] or ["(none)"]
    lines += [f"{'OS Release' if i == 0 else '':>10}: {r}" if i == 0 else f"            {r}"
              for i, r in enumerate(release)]
    portable = f"yes (PORTABLE_PREFIXES={' '.join(info.prefixes)})" if info.portable else "no (no PORTABLE_PREFIXES)"
    lines.append(f"  Portable: {portable}")
    for i, unit in enumerate(info.units or ("(none)",)):
        mark = "" if not info.units or info.attachable(unit) else "  (not attachable: name does not match)"
        lines.append(f"{'Units' if i == 0 else '':>10}{':' if i == 0 else ' '} {unit}{mark}")
    lines.append(f"  Contents: {len(info.entries)} entries")
    for e in info.entries:
        owner = f"{e.uid}/{e.gid}" if e.uid is not None else "?/?"
        link = f" -> {e.target}" if e.target is not None else ""
        lines.append(f"    {_KIND_CHARS[e.kind]}{e.mode:04o} {owner:>7} {e.size:>10} /{e.path}{link}")
    return "\n".join(lines) + "\n"
