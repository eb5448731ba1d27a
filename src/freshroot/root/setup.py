"""``[root]`` on the target: the settings file the initrd reads, the initramfs-tools hook and
script, the initrd rebuilt, and the read-only blank snapshot (``freshroot install``); the
settings kept up to date by ``apply`` (the ``root`` step).

The initrd reads its settings from the root it is about to replace
(/etc/freshroot/root-wipe.conf), so a change of ``keep`` only needs ``apply``; a machine
without the hook or the blank needs ``freshroot install``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from freshroot.config.table import Table
from freshroot.errors import ConfigError, OperationError
from freshroot.fs import ops
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist.parse import parse as parse_persist
from freshroot.plan.action import Action, Context, Step
from freshroot.root.model import RootWipe, conf_text, fstab_unescape, parse_root
from freshroot.root.top import RootVolume, private_chroot, root_volume, top_level
from freshroot.run import run

CONF = "/etc/freshroot/root-wipe.conf"
HOOK = "/etc/initramfs-tools/hooks/freshroot-root"
SCRIPT = "/etc/initramfs-tools/scripts/local-premount/freshroot-root"  # wipe = "btrfs"
BOTTOM = "/etc/initramfs-tools/scripts/local-bottom/freshroot-root"  # wipe = "overlay"
UPDATE_INITRAMFS = "/usr/sbin/update-initramfs"


def asset(name: str) -> bytes:
    """One of the initrd files shipped in this package (initramfs-tools/NAME)."""
    from importlib import resources  # ~7 ms of start-up, and every apply and boot imports this module

    return resources.files("freshroot.root").joinpath("initramfs-tools", name).read_bytes()


def read_file(root_fd: int, path: str) -> bytes | None:
    """A small file of the root, or None when it is not there."""
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.PARENT) as parent:
            return ops.read_at(parent.fd, parent.rest)
    except FileNotFoundError:
        return None


def fstab_mount_points(fstab: str) -> list[str]:
    """The mount points of /etc/fstab that are file systems of their own (not "/", swap or
    bind mounts)."""
    points = []
    for line in fstab.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith("#"):
            continue
        options = fields[3].split(",") if len(fields) > 3 else []
        point = fstab_unescape(fields[1])
        if point.startswith("/") and point != "/" and "bind" not in options and "rbind" not in options:
            points.append(point.rstrip("/"))
    return points


def storage_problems(storages: Iterable[str], fstab: str) -> list[str]:
    """The storages that are no file system of their own in ``fstab``: they live on the root
    subvolume, which the wipe replaces at every boot (the initrd checks the same)."""
    points = fstab_mount_points(fstab)
    return [s for s in storages if not any(s == p or s.startswith(p + "/") for p in points)]


def declared(declaration: Table, root_fd: int, display: str) -> tuple[RootWipe, str]:
    """[root] and the settings file for it, checked against the root's fstab."""
    root = parse_root(declaration)
    storages = [s.path for s in parse_persist(declaration, None).storages]
    if root.wipes:
        fstab = (read_file(root_fd, "/etc/fstab") or b"").decode(errors="replace")
        bad = storage_problems(storages, fstab)
        if bad:
            section = declaration.get_table("root")
            raise ConfigError(
                f"[root] wipe = \"{root.wipe}\" would wipe the storage {', '.join(bad)} with the root: it is not a "
                f"file system of its own in {display}/etc/fstab", location=section.location("wipe"),
                hint="give the storage its own file system or btrfs subvolume, mounted by /etc/fstab "
                     "(docs/root-wipe.md)")
    return root, conf_text(root, storages)


@dataclass(frozen=True)
class WriteFile(Action):
    path: str
    data: bytes
    mode: int

    def describe(self) -> str:
        return f"write {self.path} ({self.mode:04o})"

    def apply(self, ctx: Context) -> None:
        parent, name = self.path.rsplit("/", 1)
        with ops.mkdir_parents(ctx.root_fd, parent, 0o755) as d:
            replace_at(d.fd, name, self.data, mode=self.mode, uid=0, gid=0)


def file_actions(root_fd: int, conf: str, root: RootWipe) -> list[WriteFile]:
    """What differs from the declared settings file and, for a wipe, the initrd files."""
    wanted = [WriteFile(CONF, conf.encode(), 0o644)]
    if root.wipes:
        # Both scripts: each does nothing unless the settings name its wipe, so a change of
        # wipe needs no new initrd.
        wanted += [WriteFile(HOOK, asset("hook"), 0o755), WriteFile(SCRIPT, asset("local-premount"), 0o755),
                   WriteFile(BOTTOM, asset("local-bottom"), 0o755)]
    return [w for w in wanted if read_file(root_fd, w.path) != w.data]


def root_steps(declaration: Table) -> list[Step]:
    """The ``root`` step of ``apply``: the settings file the initrd reads, kept as declared.
    A machine whose initrd does not wipe yet is told to run ``freshroot install``."""
    if "root" not in declaration:
        return []

    def planner(ctx: Context) -> list[Action]:
        root, conf = declared(declaration, ctx.root_fd, ctx.display("").rstrip("/"))
        if root.wipes and read_file(ctx.root_fd, SCRIPT if root.wipe == "btrfs" else BOTTOM) is None:
            raise OperationError(f"the initrd of {ctx.display('/')} does not wipe the root yet: run `freshroot "
                                 "install` (it installs the initrd script, rebuilds the initrd and makes the blank)")
        return [a for a in file_actions(ctx.root_fd, conf, root) if a.path == CONF]

    return [Step("root", planner, description="[root]: the settings the initrd reads to wipe the root")]


def rebuild_initrd(target: str) -> str:
    """Run update-initramfs -u in ``target`` (chrooted, /proc /sys /dev bound in, in this
    process's private mount namespace); what was done, for the report."""
    root_fd = ops.open_root(target)
    try:
        if not _exists(root_fd, UPDATE_INITRAMFS):
            raise OperationError(f"{target}: no {UPDATE_INITRAMFS}: freshroot's wipe needs initramfs-tools "
                                 "(dracut and mkinitcpio are not supported yet, docs/root-wipe.md)")
    finally:
        os.close(root_fd)
    if os.path.realpath(target) == "/":
        run([UPDATE_INITRAMFS, "-u"])
        return "initrd rebuilt (update-initramfs -u)"
    with private_chroot(target):
        run(["chroot", target, UPDATE_INITRAMFS, "-u"])
    return f"initrd of {target} rebuilt (update-initramfs -u in a chroot)"


def _exists(root_fd: int, path: str) -> bool:
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE):
            return True
    except FileNotFoundError:
        return False


@dataclass(frozen=True, slots=True)
class Wipe:
    """[root] as ``install`` checked it before changing anything."""

    root: RootWipe
    conf: str
    tree: bool  # an --extra-files tree, not a root: only the files
    volume: RootVolume | None = None  # the btrfs root being wiped


def declared_for_install(declaration: Table, root_fd: int, target: str, *, tree: bool) -> Wipe | None:
    """[root] checked (storages against the target's fstab) before install changes anything."""
    if "root" not in declaration:
        return None
    if tree:  # the fstab is the machine's, not in the tree
        root = parse_root(declaration)
        return Wipe(root, conf_text(root, [s.path for s in parse_persist(declaration, None).storages]), tree)
    root, conf = declared(declaration, root_fd, "" if target == "/" else target.rstrip("/"))
    volume = root_volume(root_fd, target) if root.wipe == "btrfs" else None
    if volume is not None and volume.subvolume != root.subvolume:
        raise OperationError(f"{target} is the btrfs subvolume {volume.subvolume!r}, but [root] subvolume is "
                             f"{root.subvolume!r}: set subvolume = {volume.subvolume!r}")
    return Wipe(root, conf, tree, volume)


def install_root(wipe: Wipe | None, target: str, done: list[str]) -> None:
    """``freshroot install``'s part for [root]: settings, initrd files, initrd, blank.

    Called once the rest of the install is in place: the blank is a snapshot of the root as it
    is now (with the rebuilt initrd in /boot), and every boot's root is made from it.
    """
    if wipe is None:
        return
    root, volume = wipe.root, wipe.volume
    display = "" if target == "/" else target.rstrip("/")
    root_fd = ops.open_root(target)
    try:
        actions = file_actions(root_fd, wipe.conf, root)
        ctx = Context(root_fd, target)
        for a in actions:
            a.apply(ctx)
            done.append(f"write {display}{a.path} ({a.mode:04o})")
    finally:
        os.close(root_fd)
    if wipe.tree and root.wipes:
        done.append("[root]: the initrd and the blank snapshot are made on the machine itself: run "
                    "`freshroot install` there once it has booted")
    if root.wipe == "overlay" and not wipe.tree and any(a.path != CONF for a in actions):
        done.append(rebuild_initrd(target))
    if volume is None:
        return
    with top_level(volume) as (_top, where):
        has_blank = os.path.lexists(os.path.join(where, root.blank))
        if not has_blank or any(a.path != CONF for a in actions):
            done.append(rebuild_initrd(target))
        if has_blank:
            done.append(f"kept the blank snapshot {root.blank}: it is what every boot starts from; to take a new "
                        f"one (a changed initrd, upgraded packages), delete it and run install again")
        else:
            run(["btrfs", "subvolume", "snapshot", "-r", os.path.join(where, root.subvolume),
                 os.path.join(where, root.blank)])
            done.append(f"blank snapshot {root.blank} made from {root.subvolume} (read-only): every boot's root "
                        "starts from it")
