"""``freshroot facts``: argument definitions only (handlers in freshroot.facts.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

H = "freshroot.facts.handlers"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import add_command, add_common

    p = add_command(subparsers, "facts", handler=f"{H}:facts",
                    help="what this machine is: disks with their stable by-id names, memory, rescue "
                         "system or not, tools, OS, architecture, boot mode",
                    description="Print what an install needs to know about this machine: each disk with its "
                                "/dev/disk/by-id names, serial, model, size, partitions and what is mounted "
                                "from them; memory; whether it runs a rescue or live system; which install "
                                "tools it has; its OS, architecture and boot mode (UEFI or BIOS). Read-only. "
                                "The JSON keys are in docs/remote-install.md.")
    add_common(p, root=False, config=False, json=True)
