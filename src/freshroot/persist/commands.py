"""The persistence subcommands (argparse only; handlers live in freshroot.persist.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

H = "freshroot.persist.handlers"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import add_command, add_common

    p = add_command(subparsers, "status", handler=f"{H}:status",
                    help="show each persisted path against what is there, and owner/mode drift",
                    description="Show each persisted path against what is there, and owner/mode "
                    "drift. Exit status: 0 everything in place, 2 changes pending or drift, 3 a "
                    "conflict (apply would refuse an entry), 4 a storage missing or not mounted "
                    "(the worst one found); 65 a bad declaration or arguments, 73 an operation "
                    "failed (docs/exit-codes.md).")
    add_common(p, json=True)
    p = add_command(subparsers, "undo", handler=f"{H}:undo",
                    help="revert what freshroot made on the root, newest first (never data)",
                    description="revert what freshroot made on the root, newest first: mounts, links, "
                                "directories, /etc files, /bin/sh and /usr/bin/env, users and groups, "
                                "snippets' declared files (never data), as the state store on the root "
                                "records them. Undo works from that record, not from the declaration: "
                                "--config, as every command takes it, is only checked (a bad declaration "
                                "is refused, exit 65, before anything is undone)")
    add_common(p, json=True, dry_run=True)
    p = add_command(subparsers, "audit", handler=f"{H}:audit",
                    help="list what on the root is not persisted, and what in storage is no longer declared")
    add_common(p, json=True)
    p.add_argument("--ignore", metavar="PATTERN", action="append", default=[],
                   help="also skip files and directories matching PATTERN (a path or a glob; may be "
                        "repeated)")
    p.add_argument("--depth", type=int, default=3, metavar="N", help="group by the first N path components")
    p.add_argument("--limit", type=int, default=30, metavar="N",
                   help="show the first N directories not persisted: most files first, or most "
                        "bytes with --sizes (default 30; --json lists all)")
    p.add_argument("--sizes", action=argparse.BooleanOptionalAction, default=False,
                   help="also measure each file and rank groups by bytes (one stat per file, about "
                        "as long as du -sx; without it the walk costs what find -xdev costs)")
    p.add_argument("--blank", action="store_true",
                   help="with [root] wipe = \"btrfs\": count only files the blank snapshot does not have as "
                        "they are (new or changed since it was taken): what the next wipe removes")
    p = add_command(subparsers, "migrate", handler=f"{H}:migrate",
                    help="move what the root holds at declared paths into storage, crash-safe",
                    description="move what the root holds at declared paths into storage, crash-safe, under "
                                "the apply lock: an entry is removed from the root only once storage holds "
                                "the same; what changes or appears meanwhile stays on the root and is reported")
    add_common(p, json=True, dry_run=True)
    p.add_argument("paths", nargs="+", metavar="PATH", help="declared paths, as on the root (/var/lib/foo)")
    p.add_argument("--copy", action="store_true",
                   help="copy into storage and leave the root's copy in place: apply then binds over it, "
                        "hiding it, as long as storage holds the same data (it refuses once they differ)")
