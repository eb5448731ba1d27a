"""``[root]`` on the target: the settings file the initrd reads, the initrd files of the
root's initrd builder (initramfs-tools, dracut or mkinitcpio: freshroot.root.initrd), the
initrd rebuilt, and the read-only blank snapshot (``freshroot install``); the settings kept up
to date by ``apply`` (the ``root`` step).

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
from freshroot.fs.walk import usage
from freshroot.hints import command
from freshroot.persist.parse import parse as parse_persist
from freshroot.plan.action import Action, Context, Step
from freshroot.root.initrd import BUILDERS, Builder, asset
from freshroot.root.model import RootWipe, conf_text, fstab_unescape, parse_root
from freshroot.root.top import RootVolume, private_chroot, root_volume, top_level
from freshroot.run import run

CONF = "/etc/freshroot/root-wipe.conf"


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


def _refuse(declaration: Table, message: str, hint: str) -> ConfigError:
    return ConfigError(message, location=declaration.get_table("root").location("wipe"), hint=hint)


def declared(declaration: Table, root_fd: int) -> tuple[RootWipe, str]:
    """[root] and the settings file for it, checked against the root's fstab."""
    root = parse_root(declaration)
    storages = [s.path for s in parse_persist(declaration, None).storages]
    if root.wipes:
        fstab = (read_file(root_fd, "/etc/fstab") or b"").decode(errors="replace")
        if root.wipe == "tmpfs" and "/usr" in fstab_mount_points(fstab):
            # The initrd makes the tmpfs root once the root alone is mounted: /usr would be
            # bound from the root's empty mount point.
            raise _refuse(declaration, "[root] wipe = \"tmpfs\" binds /usr from the root file system, but /usr is a "
                          "file system of its own in /etc/fstab", 'use wipe = "overlay" (docs/root-wipe.md)')
        bad = storage_problems(storages, fstab)
        if bad:
            raise _refuse(declaration, f"[root] wipe = \"{root.wipe}\" would wipe the storage {', '.join(bad)} "
                          "with the root: it is not a file system of its own in /etc/fstab",
                          "give the storage its own file system or btrfs subvolume, mounted by /etc/fstab "
                          "(docs/root-wipe.md)")
    return root, conf_text(root, storages)


@dataclass(frozen=True)
class WriteFile(Action):
    """Write one file of the root-wipe set-up: the settings file or a file of the initrd builder."""
    path: str
    data: bytes
    mode: int

    def describe(self) -> str:
        return f"write {self.path} ({self.mode:04o})"

    def apply(self, ctx: Context) -> None:
        parent, name = self.path.rsplit("/", 1)
        with ops.mkdir_parents(ctx.root_fd, parent, 0o755) as d:
            replace_at(d.fd, name, self.data, mode=self.mode, uid=0, gid=0)


def builder_of(root_fd: int) -> Builder | None:
    """The initrd builder of the root: the first of initramfs-tools, dracut, mkinitcpio whose
    program it has (Debian's dracut package replaces initramfs-tools, so one is there)."""
    for builder in BUILDERS:
        if any(_exists(root_fd, program) for program in builder.programs):
            return builder
    return None


def file_actions(root_fd: int, conf: str, root: RootWipe, builder: Builder | None) -> list[WriteFile]:
    """What differs from the declared settings file and, for a wipe, the initrd files."""
    wanted = [WriteFile(CONF, conf.encode(), 0o644)]
    if root.wipes and builder is not None:
        # Both scripts: each does nothing unless the settings name its wipe, so a change of
        # wipe needs no new initrd.
        wanted += [WriteFile(f.path, asset(f.asset), f.mode) for f in builder.files]
    return [w for w in wanted if read_file(root_fd, w.path) != w.data]


def root_steps(declaration: Table) -> list[Step]:
    """The ``root`` step of ``apply``: the settings file the initrd reads, kept as declared.
    A machine whose initrd does not wipe yet is told to run ``freshroot install``."""
    if "root" not in declaration:
        return []

    def planner(ctx: Context) -> list[Action]:
        root, conf = declared(declaration, ctx.root_fd)
        if root.wipes and all(read_file(ctx.root_fd, f.path) is None for b in BUILDERS for f in b.files):
            raise OperationError("the initrd does not wipe the root yet: run "
                                 f"`{command('install')}` (it installs the initrd script, rebuilds the initrd and "
                                 "makes the blank)")
        return [a for a in file_actions(ctx.root_fd, conf, root, None) if a.path == CONF]

    return [Step("root", planner, description="[root]: the settings the initrd reads to wipe the root")]


def rebuild_initrd(target: str, builder: Builder) -> str:
    """Rebuild the initrd of ``target`` with its builder (update-initramfs -u, dracut
    --regenerate-all --force, mkinitcpio -P), chrooted with /proc /sys /dev bound in, in this
    process's private mount namespace; what was done, for the report."""
    command = " ".join([os.path.basename(builder.rebuild[0]), *builder.rebuild[1:]])
    if os.path.realpath(target) == "/":
        run(list(builder.rebuild))
        return f"initrd rebuilt ({command})"
    with private_chroot(target):
        run(["chroot", target, *builder.rebuild])
    return f"initrd rebuilt ({command} in a chroot)"


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
    tree: bool  # an --extra-files tree, not a root: only the settings file
    volume: RootVolume | None = None  # the btrfs root being wiped
    builder: Builder | None = None  # what builds the root's initrd


def declared_for_install(declaration: Table, root_fd: int, target: str, *, tree: bool) -> Wipe | None:
    """[root] checked (storages against the target's fstab) before install changes anything."""
    if "root" not in declaration:
        return None
    if tree:  # the fstab is the machine's, not in the tree
        root = parse_root(declaration)
        return Wipe(root, conf_text(root, [s.path for s in parse_persist(declaration, None).storages]), tree)
    root, conf = declared(declaration, root_fd)
    volume = root_volume(root_fd, target) if root.wipe == "btrfs" else None
    if volume is not None and volume.subvolume != root.subvolume:
        raise OperationError(f"the root is the btrfs subvolume {volume.subvolume!r}, but [root] subvolume is "
                             f"{root.subvolume!r}: set subvolume = {volume.subvolume!r}")
    if root.wipe == "tmpfs":
        _check_tmpfs_size(declaration, root_fd, target)
    builder = builder_of(root_fd)
    if root.wipes and builder is None:
        known = ", ".join(f"{b.name} ({' or '.join(b.programs)})" for b in BUILDERS)
        raise OperationError(f"no initrd builder freshroot's wipe works with; looked for {known} "
                             "(docs/root-wipe.md)")
    return Wipe(root, conf, tree, volume, builder)


def tmpfs_copy_size(root_fd: int, fstab: str) -> int:
    """Bytes the initrd copies into RAM at every boot for wipe = "tmpfs": the root's top level
    but /usr (bound) and the mount points of other file systems (mounted over later)."""
    skip = {p.strip("/").split("/")[0] for p in fstab_mount_points(fstab) if p.count("/") == 1} | {"usr"}
    real = ops.reopen(root_fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return sum(usage(real, name, lambda _below, _e: None).size
                   for name in ops.listdir_fd(real) if name not in skip)
    finally:
        os.close(real)


def _memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_tmpfs_size(declaration: Table, root_fd: int, target: str) -> None:
    """Refuse a tmpfs root whose copy would take more than a quarter of this machine's RAM
    (a tmpfs may grow to half: the boot needs room to write)."""
    memory = _memory()
    if memory is None:
        return
    fstab = (read_file(root_fd, "/etc/fstab") or b"").decode(errors="replace")
    size = tmpfs_copy_size(root_fd, fstab)
    if size > memory // 4:
        raise _refuse(declaration, f"[root] wipe = \"tmpfs\" would copy {size >> 20} MiB of the root (all but /usr) "
                      f"into RAM at every boot, more than a quarter of this machine's {memory >> 20} MiB",
                      'use wipe = "overlay", which copies nothing (docs/root-wipe.md)')


def install_root(wipe: Wipe | None, target: str, done: list[str]) -> None:
    """``freshroot install``'s part for [root]: settings, initrd files, initrd, blank.

    Called once the rest of the install is in place: the blank is a snapshot of the root as it
    is now (with the rebuilt initrd in /boot), and every boot's root is made from it.
    """
    if wipe is None:
        return
    root, volume = wipe.root, wipe.volume
    root_fd = ops.open_root(target)
    try:
        actions = file_actions(root_fd, wipe.conf, root, wipe.builder)
        ctx = Context(root_fd, target)
        for a in actions:
            a.apply(ctx)
            done.append(f"write {a.path} ({a.mode:04o})")
    finally:
        os.close(root_fd)
    if wipe.tree and root.wipes:
        done.append("[root]: the initrd and the blank snapshot are made on the machine itself: run "
                    "`freshroot install` there once it has booted")
    builder = wipe.builder
    if builder is None or wipe.tree:
        return
    # A systemd initrd (dracut) also carries the declaration and the generator for early
    # paths, which this install may have changed: it is rebuilt every time.
    rebuild = builder.systemd or any(a.path != CONF for a in actions)
    if root.wipe != "btrfs" and rebuild:
        done.append(rebuild_initrd(target, builder))
    if volume is None:
        return
    with top_level(volume) as (_top, where):
        has_blank = os.path.lexists(os.path.join(where, root.blank))
        if not has_blank or rebuild:
            done.append(rebuild_initrd(target, builder))
        if has_blank:
            done.append(f"kept the blank snapshot {root.blank}: it is what every boot starts from; to take a new "
                        f"one (a changed initrd, upgraded packages), delete it and run install again")
        else:
            run(["btrfs", "subvolume", "snapshot", "-r", os.path.join(where, root.subvolume),
                 os.path.join(where, root.blank)])
            done.append(f"blank snapshot {root.blank} made from {root.subvolume} (read-only): every boot's root "
                        "starts from it")
