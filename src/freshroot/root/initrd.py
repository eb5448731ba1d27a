"""The initrd builders freshroot's wipe works with: which one a root uses, the files it gets,
and how its initrd is rebuilt.

The wipe itself is two POSIX sh scripts, shipped once (initramfs-tools/local-premount for
``btrfs``, initramfs-tools/local-bottom for ``overlay`` and ``tmpfs``) and installed for
every builder: initramfs-tools runs them as they are; dracut's module 90freshroot-root and
mkinitcpio's hook copy them into the initrd and run them through a small wrapper that gives
them initramfs-tools' variables (the root device, its options, where it is mounted). One
logic, one set of safety checks, whatever builds the initrd.
"""

from __future__ import annotations

from dataclasses import dataclass

HOOK = "/etc/initramfs-tools/hooks/freshroot-root"
SCRIPT = "/etc/initramfs-tools/scripts/local-premount/freshroot-root"  # wipe = "btrfs"
BOTTOM = "/etc/initramfs-tools/scripts/local-bottom/freshroot-root"  # wipe = "overlay", "tmpfs"
DRACUT_MODULE = "/usr/lib/dracut/modules.d/90freshroot-root"
MKINITCPIO_LIB = "/usr/lib/freshroot/initcpio"


@dataclass(frozen=True, slots=True)
class InitrdFile:
    """One file freshroot adds to the initrd."""
    path: str  # in the target root
    asset: str  # below freshroot/root in this package
    mode: int


@dataclass(frozen=True, slots=True)
class Builder:
    """An initrd builder (initramfs-tools, dracut, mkinitcpio), and what freshroot adds to it."""
    name: str
    programs: tuple[str, ...]  # any of these in the root: the root builds its initrd with this
    files: tuple[InitrdFile, ...]
    rebuild: tuple[str, ...]  # run in the root (chrooted when it is another root)
    systemd: bool  # the initrd runs systemd (early paths get their units there)


INITRAMFS_TOOLS = Builder(
    "initramfs-tools", ("/usr/sbin/update-initramfs",),
    (InitrdFile(HOOK, "initramfs-tools/hook", 0o755),
     InitrdFile(SCRIPT, "initramfs-tools/local-premount", 0o755),
     InitrdFile(BOTTOM, "initramfs-tools/local-bottom", 0o755)),
    ("/usr/sbin/update-initramfs", "-u"), systemd=False)

DRACUT = Builder(
    "dracut", ("/usr/bin/dracut", "/usr/sbin/dracut"),
    (InitrdFile(f"{DRACUT_MODULE}/freshroot-root", "dracut/freshroot-root", 0o755),
     InitrdFile(f"{DRACUT_MODULE}/freshroot-root-btrfs.service", "dracut/freshroot-root-btrfs.service", 0o644),
     InitrdFile(f"{DRACUT_MODULE}/freshroot-root-volatile.service", "dracut/freshroot-root-volatile.service", 0o644),
     InitrdFile(f"{DRACUT_MODULE}/wipe-btrfs", "initramfs-tools/local-premount", 0o755),
     InitrdFile(f"{DRACUT_MODULE}/wipe-volatile", "initramfs-tools/local-bottom", 0o755),
     InitrdFile("/etc/dracut.conf.d/90-freshroot-root.conf", "dracut/freshroot-root.conf", 0o644),
     InitrdFile(f"{DRACUT_MODULE}/module-setup.sh", "dracut/module-setup.sh", 0o755)),
    ("dracut", "--regenerate-all", "--force"), systemd=True)

# Not booted here (no Arch in the tests): checked by tests/root/test_mkinitcpio.py only.
MKINITCPIO = Builder(
    "mkinitcpio", ("/usr/bin/mkinitcpio",),
    (InitrdFile(f"{MKINITCPIO_LIB}/wipe-btrfs", "initramfs-tools/local-premount", 0o755),
     InitrdFile(f"{MKINITCPIO_LIB}/wipe-volatile", "initramfs-tools/local-bottom", 0o755),
     InitrdFile("/etc/initcpio/install/freshroot-root", "mkinitcpio/install", 0o644),
     InitrdFile("/etc/mkinitcpio.conf.d/freshroot-root.conf", "mkinitcpio/freshroot-root.conf", 0o644),
     InitrdFile("/etc/initcpio/hooks/freshroot-root", "mkinitcpio/hooks", 0o644)),
    ("mkinitcpio", "-P"), systemd=False)

BUILDERS = (INITRAMFS_TOOLS, DRACUT, MKINITCPIO)


def asset(name: str) -> bytes:
    """One of the initrd files shipped in this package (below freshroot/root)."""
    from importlib import resources  # ~7 ms of start-up, and every apply and boot imports this module

    return resources.files("freshroot.root").joinpath(*name.split("/")).read_bytes()
