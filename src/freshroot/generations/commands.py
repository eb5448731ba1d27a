"""``freshroot generations``, ``rollback`` and ``confirm`` (argparse only; handlers in
freshroot.generations.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

H = "freshroot.generations.handlers"
_STORE_HELP = ("the generations directory below the root (default: .freshroot/generations in the first "
               "storage the declaration persists to, else /var/lib/freshroot/generations)")


def _seconds(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r}: a number of seconds")
    return int(value)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import add_command, add_common

    p = add_command(subparsers, "generations", handler=f"{H}:generations",
                    help="list the declarations apply has kept, the current one marked",
                    description="List the generations: each declaration `apply` applied, kept in storage "
                    "with its number, time, plan id, freshroot version and confirm state; the current one "
                    "is marked. 73 when the generations directory cannot be trusted (docs/fleet.md).")
    add_common(p, json=True)
    p.add_argument("--generations", metavar="PATH", help=_STORE_HELP)
    p = add_command(subparsers, "rollback", handler=f"{H}:rollback",
                    help="apply an earlier generation's declaration again (default: the previous one)",
                    description="Apply generation N's kept declaration again (default: the one before the "
                    "current one) and make it current; declaration files it read below the root are put "
                    "back as they were. It restores what apply makes (the root's mounts and links, /etc "
                    "files, users, units, activation snippets), never persisted data (docs/fleet.md). "
                    "Exit status as apply's: 0, 1 a step failed, 65 no such generation, 73 an operation "
                    "failed.")
    add_common(p, json=True)
    p.add_argument("--to", metavar="N", type=int, help="the generation to go back to")
    p.add_argument("--generations", metavar="PATH", help=_STORE_HELP)
    p.add_argument("--if-unconfirmed", metavar="N", type=int,
                   help="(the confirm timer) roll back only if generation N is still current and unconfirmed")
    p.add_argument("--delay", metavar="SECONDS", type=_seconds, default=0, help=argparse.SUPPRESS)
    p = add_command(subparsers, "confirm", handler=f"{H}:confirm",
                    help="keep the current generation: stop the rollback timer `apply --confirm-timeout` armed",
                    description="Mark the current generation confirmed and stop its rollback timer. Exit "
                    "status: 0 confirmed (or nothing pending), 1 too late (the timer already rolled back), "
                    "73 an operation failed.")
    add_common(p, json=True)
    p.add_argument("--generations", metavar="PATH", help=_STORE_HELP)
