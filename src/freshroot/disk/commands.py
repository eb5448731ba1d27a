"""``freshroot disk plan|apply``: argument definitions only (handlers in freshroot.disk.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

H = "freshroot.disk.handlers"


def _options(p: argparse.ArgumentParser) -> None:
    from freshroot.cli import add_common

    add_common(p, root=False, json=True)
    p.add_argument("--device", metavar="PATH",
                   help="the disk, as a /dev/disk/by-id/ name (default: [disk] device); refused when it is "
                        "another name, a partition, in use, or its serial or size is not the declared one")
    p.add_argument("--hostname", metavar="NAME",
                   help="the host the disk is for: the systemd-repart --seed is made from it unless [disk] seed "
                        "is declared (default: this machine's host name)")
    p.add_argument("--mount-root", metavar="DIR", default="/mnt",
                   help="where the new root is mounted, with the other file systems below it (default: /mnt)")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import ArgumentParser, add_command

    parser = add_command(
        subparsers, "disk", handler=f"{H}:plan",
        help="partition the install disk from [disk] with systemd-repart, mount it and write its fstab",
        description="Partition the disk [disk] declares with systemd-repart: `plan` shows what systemd-repart "
                    "would do (a dry run), `apply` does it, mounts the new root and storages under --mount-root "
                    "and writes its /etc/fstab. Partition UUIDs come from a per-host seed, so a second apply finds "
                    "its partitions and changes nothing. See docs/remote-install.md.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=ArgumentParser,
                                     required=True)
    p = add_command(commands, "plan", handler=f"{H}:plan",
                    help="check the disk and show the partitions systemd-repart would make (dry run)")
    _options(p)
    p = add_command(commands, "apply", handler=f"{H}:apply",
                    help="partition the disk, mount the new file systems under --mount-root, write its fstab")
    _options(p)
