"""``freshroot bootstrap``: the engine, then the bootloader, into a mounted new root.

The process first takes a mount namespace of its own: a raw image's mounts and the /dev,
/proc, /sys and /run bound into the root for the commands that run inside it (GRUB,
kernel-install) are never seen by the rescue system, and go away with the process. The
engine may ship its own /etc/fstab; the one ``disk apply`` wrote (it names this disk's
partitions) is put back.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from freshroot import rootpaths
from freshroot.config.table import Table
from freshroot.errors import ConfigError, OperationError, UsageError
from freshroot.osroot.engines import (
    Command,
    bootloader_commands,
    engine_commands,
    is_tar,
    kernel_install_commands,
    which,
)
from freshroot.osroot.model import OsRoot, parse_os

SPECIAL = ("dev", "proc", "sys", "run")


def _declaration(args: argparse.Namespace) -> Table:
    from freshroot.compose import load_checked_unowned

    return load_checked_unowned(args.config)


def _show(c: Command, root: str) -> str:
    from freshroot.run import format_command

    return format_command(("chroot", root, *c.argv) if c.chroot else c.argv)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _copy_raw(image: str, root: str) -> None:
    """A raw disk image (or bare file system image) mounted read-only by systemd-dissect (the
    Discoverable Partitions Specification picks the root), copied into ``root`` whole."""
    from freshroot.fs import ops
    from freshroot.fs.copy import copy_tree_at
    from freshroot.run import run

    where = tempfile.mkdtemp(prefix="freshroot-image-")
    try:
        run([which("systemd-dissect"), "--read-only", "--mount", image, where])
        src_parent, dst_parent = ops.open_root(os.path.dirname(where)), ops.open_root(os.path.dirname(root) or "/")
        try:
            report = copy_tree_at(src_parent, os.path.basename(where), dst_parent, os.path.basename(root),
                                  merge=True, hardlinks=True)
        finally:
            os.close(src_parent)
            os.close(dst_parent)
        if report.skipped:
            sys.stdout.write(f"kept what was in the root already: {', '.join(report.skipped[:10])}"
                             f"{' ...' if len(report.skipped) > 10 else ''}\n")
    finally:
        run(["umount", "--recursive", where], check=False)
        os.rmdir(where)


def _private() -> None:
    """This process in a mount namespace of its own (once), for the mounts only it needs."""
    from freshroot.root.top import private

    private()


def _bind_special(root: str) -> None:
    from freshroot.run import run

    for name in SPECIAL:
        target = os.path.join(root, name)
        os.makedirs(target, mode=0o755, exist_ok=True)
        run(["mount", "--rbind", f"/{name}", target])
        run(["mount", "--make-rslave", target])


def _cmdline(root: str) -> str | None:
    """root= and rootflags= for the kernel from the root's fstab "/" line (disk apply's)."""
    text = (_read(os.path.join(root, "etc/fstab")) or b"").decode("utf-8", "replace")
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and not fields[0].startswith("#") and fields[1] == "/":
            flags = [o for o in fields[3].split(",") if o.startswith("subvol=")]
            return " ".join([f"root={fields[0]}", *([f"rootflags={','.join(flags)}"] if flags else []), "rw"])
    return None


def _plan(os_root: OsRoot, args: argparse.Namespace, table: Table) -> list[Command]:
    from freshroot.disk.model import parse_disk

    layout = parse_disk(table)
    device = args.device or (layout.device if layout else None)
    uefi = os.path.isdir("/sys/firmware/efi")
    return [*engine_commands(os_root, args.root),
            *bootloader_commands(os_root, args.root, uefi=uefi, device=device)]


def bootstrap(args: argparse.Namespace) -> int:
    from freshroot.run import run

    table = _declaration(args)
    os_root = parse_os(table)
    if os_root is None:
        raise UsageError("the declaration has no [os] section: nothing to bootstrap",
                         hint="docs/remote-install.md has an [os] to start from")
    if os_root.engine is None:
        raise ConfigError("[os] names no engine", location=table.location("os"),
                          hint="engine = \"image\", \"mmdebstrap\", \"debootstrap\", \"dnf\" or \"pacstrap\"")
    root = args.root
    if root in ("", "/") or os.path.realpath(root) == "/":
        raise UsageError(f"--root {root}: must be the new root's directory (such as /mnt), not /")
    if not os.path.isdir(root):
        raise UsageError(f"--root {root}: no such directory",
                         hint="mount the new root there first (`freshroot disk apply` leaves it under /mnt)")
    raw = os_root.engine == "image" and os_root.image is not None and not is_tar(os_root.image)
    if os_root.engine == "image" and os_root.image is not None:
        # Checked before anything runs, by --dry-run too: a raw image may be a block device,
        # a tar archive is a file.
        image = os_root.image
        if not os.path.exists(image):
            raise OperationError(f"[os] image {image}: no such file")
        if os.path.isdir(image):
            raise OperationError(f"[os] image {image}: a directory, not {'a raw image' if raw else 'a tar archive'}")
    commands = _plan(os_root, args, table)
    engine = engine_commands(os_root, root)
    # The root named once; after it, paths are as it sees them, except in the commands shown,
    # which are the commands run on this machine (docs/activation.md, "Paths in output").
    rootpaths.print_head("bootstrap of")
    if args.dry_run:
        if raw:
            sys.stdout.write(f"systemd-dissect --read-only --mount {os_root.image} DIR; copy DIR to {root}\n")
        sys.stdout.write("".join(f"{_show(c, root)}\n" for c in commands))
        if os_root.bootloader == "systemd-boot":
            sys.stdout.write("then kernel-install add for each kernel in /boot, inside the root\n")
        return 0
    fstab = _read(os.path.join(root, "etc/fstab"))
    for c in engine:
        sys.stdout.write(f"==> {c.why}: {_show(c, root)}\n")
        sys.stdout.flush()
        run(c.argv, capture=False)
    if raw:
        assert os_root.image is not None
        sys.stdout.write(f"==> copy {os_root.image} into the root\n")
        _private()
        _copy_raw(os_root.image, root)
    if fstab is not None and _read(os.path.join(root, "etc/fstab")) != fstab:
        from freshroot.activation.identity import write_file
        from freshroot.fs.ops import open_root

        root_fd = open_root(root)
        try:
            write_file(root_fd, "/etc/fstab", fstab, 0o644)
        finally:
            os.close(root_fd)
        sys.stdout.write("put back /etc/fstab (disk apply's)\n")
    loader = commands[len(engine):]
    if os_root.bootloader == "systemd-boot":
        cmdline = _cmdline(root)
        if cmdline is not None and _read(os.path.join(root, "etc/kernel/cmdline")) is None:
            os.makedirs(os.path.join(root, "etc/kernel"), exist_ok=True)
            with open(os.path.join(root, "etc/kernel/cmdline"), "w") as f:
                f.write(cmdline + "\n")
        loader += kernel_install_commands(root)
    if any(c.chroot for c in loader):
        _private()
        _bind_special(root)
    for c in loader:
        sys.stdout.write(f"==> {c.why}: {_show(c, root)}\n")
        sys.stdout.flush()
        run((which("chroot"), root, *c.argv) if c.chroot else c.argv, capture=False)
    sys.stdout.write(f"{os_root.engine} done{', bootloader ' + os_root.bootloader if loader else ''}\n")
    return 0
