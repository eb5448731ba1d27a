"""``freshroot bootstrap``: argument definitions only (handlers in freshroot.osroot.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

H = "freshroot.osroot.handlers"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import add_command, add_common, root_path

    p = add_command(subparsers, "bootstrap", handler=f"{H}:bootstrap",
                    help="put the OS [os] declares on a new root (image, mmdebstrap, debootstrap, dnf, pacstrap) "
                         "and install its bootloader",
                    description="Run the engine [os] declares into --root (a tar or raw image, mmdebstrap, "
                                "debootstrap, dnf --installroot, pacstrap), then its bootloader (systemd-boot by "
                                "bootctl, or GRUB). The /etc/fstab `disk apply` wrote is kept. --dry-run prints "
                                "the commands. See docs/remote-install.md.")
    add_common(p, root=False, dry_run=True)
    p.add_argument("--root", metavar="DIR", required=True, type=root_path,
                   help="the new root, mounted (as `freshroot disk apply` leaves it under /mnt)")
    p.add_argument("--device", metavar="PATH",
                   help="the disk GRUB is installed on in BIOS mode (default: [disk] device)")
