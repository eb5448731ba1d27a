"""``freshroot roots`` and ``freshroot rescue``: the old roots the btrfs wipe keeps.

Both mount the btrfs top level privately (freshroot.root.top) and read the old roots there.
``rescue`` walks the old root and the live root with fs.chase (SAFE: no symlink a user
planted is followed) and copies with fs.copy on fds; it never replaces what is in the root
without ``--force``, and even then keeps the replaced entry beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from dataclasses import dataclass

from freshroot import rootpaths
from freshroot.compose import load_checked
from freshroot.errors import OperationError, UsageError
from freshroot.fs import ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.copy import copy_tree_at
from freshroot.fs.walk import usage
from freshroot.persist.parse import parse as parse_persist
from freshroot.root.model import RootWipe, parse_root
from freshroot.root.top import RootVolume, root_volume, top_level

ASIDE = "~freshroot-rescue"


@dataclass(frozen=True, slots=True)
class OldRoot:
    """One kept old root subvolume."""
    name: str  # its date, 2026-12-06T04:10:00 (".N" when two boots fell in one second)
    size: int  # bytes allocated, nested subvolumes included


def _declared(args: argparse.Namespace, root_fd: int) -> tuple[RootWipe, RootVolume]:
    declaration = load_checked(root_fd, args.config, root=args.root)
    root = parse_root(declaration)
    if root.wipe != "btrfs":
        raise UsageError(f"[root] wipe = \"{root.wipe}\": only wipe = \"btrfs\" keeps old roots to look at")
    return root, root_volume(root_fd, args.root)


def _size(dir_fd: int) -> int:
    """Bytes allocated below ``dir_fd`` (as du counts them; what cannot be read is left out)."""
    return usage(dir_fd, ".", lambda below, e: None).allocated


def list_old_roots(top: int, root: RootWipe, *, sizes: bool = True) -> list[OldRoot]:
    """The kept roots, oldest first (their names are dates)."""
    try:
        with chase(root.old_roots, root_fd=top) as d:
            real = ops.reopen(d.fd, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return []
    try:
        found = []
        for name in ops.listdir_fd(real):
            if not stat.S_ISDIR(ops.lstat_at(real, name).st_mode):
                continue
            size = 0
            if sizes:
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=real)
                try:
                    size = _size(sub)
                finally:
                    os.close(sub)
            found.append(OldRoot(name, size))
        return found
    finally:
        os.close(real)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def roots(args: argparse.Namespace) -> int:
    root_fd = ops.open_root(args.root)
    try:
        root, volume = _declared(args, root_fd)
    finally:
        os.close(root_fd)
    with top_level(volume) as (top, where):
        old = list_old_roots(top, root)
        blank = os.path.lexists(os.path.join(where, root.blank))
    if args.json:
        document = {"device": volume.device, "subvolume": root.subvolume, "blank": root.blank,
                    "blank_present": blank, "old_roots": root.old_roots,
                    "roots": [{"name": r.name, "date": r.name.split(".")[0], "size": r.size} for r in old]}
        from freshroot.output import print_json

        print_json(document)
        return 0
    sys.stdout.write(f"{volume.device}: root {root.subvolume}, blank {root.blank}"
                     f"{'' if blank else ' (MISSING: the initrd keeps the root instead of wiping it)'}, "
                     f"keeping {root.keep_text()} in {root.old_roots}/\n")
    if not old:
        sys.stdout.write("no old roots kept yet\n")
    for r in old:
        sys.stdout.write(f"{r.name}  {_human(r.size):>10}\n")
    return 0


def _pick(old: list[OldRoot], wanted: str | None) -> OldRoot:
    if not old:
        raise OperationError("no old roots are kept yet: nothing to rescue from")
    if wanted is None:
        return old[-1]
    exact = [r for r in old if r.name == wanted]
    matches = exact or [r for r in old if r.name.startswith(wanted)]
    if len(matches) != 1:
        names = ", ".join(r.name for r in old)
        what = "no old root" if not matches else f"{len(matches)} old roots"
        raise UsageError(f"--from {wanted}: {what} match; the old roots are: {names}")
    return matches[0]


def _snippet(declaration_storages: list[str], path: str, *, is_dir: bool) -> str:
    storage = declaration_storages[0] if declaration_storages else "/persist"
    key = "directories" if is_dir else "files"
    # JSON's string escapes are TOML's basic-string escapes: any path reads back as itself.
    return f"[persist.{json.dumps(storage)}]\n{key} = [{json.dumps(path)}]\n"


def rescue(args: argparse.Namespace) -> int:
    path = "/" + os.path.normpath(args.path).lstrip("/")
    if not args.path.startswith("/") or path == "/":
        raise UsageError(f"{args.path}: give the absolute path of a file or directory, as it was in the old root")
    root_fd = ops.open_root(args.root)
    try:
        declaration = load_checked(root_fd, args.config, root=args.root)
        root = parse_root(declaration)
        if root.wipe != "btrfs":
            raise UsageError(f"[root] wipe = \"{root.wipe}\": only wipe = \"btrfs\" keeps old roots to rescue from")
        volume = root_volume(root_fd, args.root)
        storages = [s.path for s in parse_persist(declaration, None).storages]
        with top_level(volume) as (top, _where):
            old = _pick(list_old_roots(top, root, sizes=False), args.date)
            rootpaths.print_head("rescue into")  # with --root: the paths below are inside it
            with chase(f"{root.old_roots}/{old.name}", root_fd=top) as old_root:
                is_dir = _copy(old_root.fd, root_fd, path, old.name, force=args.force)
    finally:
        os.close(root_fd)
    sys.stdout.write(f"to keep it across boots, add to the declaration:\n\n{_snippet(storages, path, is_dir=is_dir)}")
    return 0


def _copy(old_fd: int, root_fd: int, path: str, name: str, *, force: bool) -> bool:
    """Copy ``path`` from the old root to the root; whether it was a directory."""
    flags = ChaseFlags.SAFE | ChaseFlags.PARENT
    try:
        source = chase(path, root_fd=old_fd, flags=flags)
    except FileNotFoundError:
        raise OperationError(f"{path} is not in the old root {name}") from None
    with source:
        try:
            st = ops.lstat_at(source.fd, source.rest)
        except FileNotFoundError:
            raise OperationError(f"{path} is not in the old root {name}") from None
        parent = os.path.dirname(path)
        with ops.mkdir_parents(root_fd, parent, 0o755) as dest:
            target = os.path.basename(path)
            if _lexists(dest.fd, target):
                if not force:
                    raise OperationError(f"{path} exists in the root: not replaced (--force moves it aside to "
                                         f"{path}{ASIDE} and copies over)")
                if _lexists(dest.fd, target + ASIDE):
                    raise OperationError(f"{path}{ASIDE} exists: remove it first (it is what an earlier "
                                         "--force moved aside)")
                ops.rename_at(dest.fd, target, dest.fd, target + ASIDE)
                sys.stdout.write(f"moved {path} aside to {path}{ASIDE}\n")
            report = copy_tree_at(source.fd, source.rest, dest.fd, target, cross_mounts=False, hardlinks=True)
    sys.stdout.write(f"rescued {path} from the old root {name} ({report.copied} entries)\n")
    return stat.S_ISDIR(st.st_mode)


def _lexists(dir_fd: int, name: str) -> bool:
    try:
        ops.lstat_at(dir_fd, name)
    except FileNotFoundError:
        return False
    return True
