"""The commands that put an OS on the new root and make it bootable, from ``[os]``.

Each engine is the distribution's own tool (or a prebuilt image), run as its documentation
says; freshroot only builds the command line, so ``bootstrap --dry-run`` prints exactly what
runs. Tools are looked up on PATH, then in the system directories (a rescue shell's PATH may
lack /usr/sbin), and run with freshroot.run's clean environment.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from freshroot.errors import OperationError
from freshroot.osroot.model import OsRoot

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar.bz2", ".tbz2", ".tar.lz4")


@dataclass(frozen=True, slots=True)
class Command:
    """One command of an OS root engine, and why it runs."""
    argv: tuple[str, ...]
    why: str
    chroot: bool = False  # runs inside the new root: /dev, /proc, /sys and /run bound there first


def which(name: str) -> str:
    from freshroot.facts.machine import TOOL_PATH

    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:{TOOL_PATH}")
    if found is None:
        raise OperationError(f"{name} is not installed on this machine (freshroot facts lists the tools)")
    return found


def is_tar(image: str) -> bool:
    return image.endswith(TAR_SUFFIXES)


def engine_commands(os_root: OsRoot, root: str) -> list[Command]:
    """The engine's command lines for the new root ``root`` (the raw image engine is no
    command: freshroot mounts and copies it, freshroot.osroot.image)."""
    e = os_root
    packages = list(e.packages)
    match e.engine:
        case "image":
            assert e.image is not None
            if not is_tar(e.image):
                return []
            # GNU tar picks the decompressor from the file itself; owners by number, as the
            # image's own passwd means them, not the rescue system's.
            return [Command((which("tar"), "--extract", f"--file={e.image}", f"--directory={root}",
                             "--numeric-owner", "--same-owner", "--preserve-permissions", "--xattrs",
                             "--xattrs-include=*", "--acls"), f"unpack {e.image}")]
        case "mmdebstrap":
            argv = [which("mmdebstrap"), "--skip=check/empty", "--mode=root"]  # mount points are already there
            argv += [f"--include={','.join(packages)}"] if packages else []
            argv += [f"--architectures={e.architecture}"] if e.architecture else []
            argv += [e.suite or "", root, *([e.mirror] if e.mirror else [])]
            return [Command(tuple(argv), f"Debian {e.suite} by mmdebstrap")]
        case "debootstrap":
            argv = [which("debootstrap")]
            argv += [f"--include={','.join(packages)}"] if packages else []
            argv += [f"--arch={e.architecture}"] if e.architecture else []
            argv += [e.suite or "", root, *([e.mirror] if e.mirror else [])]
            return [Command(tuple(argv), f"Debian {e.suite} by debootstrap")]
        case "dnf":
            argv = [which("dnf"), "--assumeyes", f"--installroot={root}", f"--releasever={e.release}",
                    "--setopt=install_weak_deps=False"]
            argv += [f"--forcearch={e.architecture}"] if e.architecture else []
            return [Command((*argv, "install", *packages), f"release {e.release} by dnf --installroot")]
        case "pacstrap":
            return [Command((which("pacstrap"), "-K", root, *packages), "Arch Linux by pacstrap")]
    raise AssertionError(e.engine)


def _efi_target(machine: str) -> str:
    return {"x86_64": "x86_64-efi", "aarch64": "arm64-efi", "i686": "i386-efi",
            "riscv64": "riscv64-efi"}.get(machine, f"{machine}-efi")


def bootloader_commands(os_root: OsRoot, root: str, *, uefi: bool, device: str | None) -> list[Command]:
    """The bootloader's commands: systemd-boot by ``bootctl --root`` (the kernels then by
    kernel-install inside the root), or GRUB by its own grub-install and grub-mkconfig inside
    the root (the root's GRUB matches the modules it installs)."""
    esp = os_root.esp
    match os_root.bootloader:
        case "none":
            return []
        case "systemd-boot":
            argv = [which("bootctl"), f"--root={root}", f"--esp-path={root.rstrip('/')}{esp}"]
            argv += [] if uefi else ["--no-variables"]  # no EFI variables to write in a BIOS-booted rescue system
            return [Command((*argv, "install"), "systemd-boot into the ESP")]
        case "grub":
            install: tuple[str, ...]
            if uefi:
                install = ("grub-install", f"--target={_efi_target(os.uname().machine)}", f"--efi-directory={esp}",
                           "--bootloader-id=freshroot")
            else:
                if device is None:
                    raise OperationError("bootloader = \"grub\" on a BIOS machine needs the disk: give --device "
                                         "or declare [disk] device")
                install = ("grub-install", "--target=i386-pc", os.path.realpath(device))
            return [Command(install, "GRUB", chroot=True),
                    Command(("grub-mkconfig", "-o", "/boot/grub/grub.cfg"), "GRUB's configuration", chroot=True)]
    raise AssertionError(os_root.bootloader)


def kernel_install_commands(root: str) -> list[Command]:
    """``kernel-install add`` for each kernel of the root: systemd-boot's loader entries."""
    boot = os.path.join(root, "boot")
    try:
        kernels = sorted(n.removeprefix("vmlinuz-") for n in os.listdir(boot) if n.startswith("vmlinuz-"))
    except OSError:
        kernels = []
    return [Command(("kernel-install", "add", v, f"/boot/vmlinuz-{v}"), f"loader entry for kernel {v}", chroot=True)
            for v in kernels]
