"""``freshroot roots`` and ``freshroot rescue``: argument definitions only (handlers in
freshroot.root.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

H = "freshroot.root.handlers"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import add_command, add_common

    p = add_command(subparsers, "roots", handler=f"{H}:roots",
                    help="list the old roots the btrfs wipe kept (date, size) and the blank")
    add_common(p, json=True)
    p = add_command(subparsers, "rescue", handler=f"{H}:rescue",
                    help="copy a file or directory that was not persisted back from an old root",
                    description="Copy PATH from an old root (the newest, or --from DATE) to the same place in "
                                "the root, and print the declaration that would persist it. An existing PATH is "
                                "kept unless --force, which moves it aside to PATH~freshroot-rescue first.")
    add_common(p)
    p.add_argument("path", metavar="PATH", help="the absolute path, as it was in the old root")
    p.add_argument("--from", dest="date", metavar="DATE",
                   help="the old root to copy from: its name, or the start of it (2026-12-06T04) "
                        "(default: the newest)")
    p.add_argument("--force", action="store_true",
                   help="when PATH exists, move it aside to PATH~freshroot-rescue and copy over")
