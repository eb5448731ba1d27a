"""``freshroot deploy`` (argparse only; the handler in freshroot.deploy.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any


def _percent(value: str) -> int:
    if not value.isdigit() or int(value) > 100:
        raise argparse.ArgumentTypeError(f"{value!r}: a percentage from 0 to 100")
    return int(value)


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r}: a number of hosts")
    return int(value)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import add_command

    p = add_command(subparsers, "deploy", handler="freshroot.deploy.handlers:deploy",
                    help="plan, apply, install or roll back a fleet over SSH (pyinfra), one report per host",
                    description="Run freshroot on the hosts of a fleet.toml through pyinfra (the freshroot[pyinfra] "
                    "extra): each host gets its declaration parts uploaded, then plan, apply, install, rollback "
                    "or confirm; one report per host (reachable, ok, plan, apply, generation, confirmed, "
                    "rolled_back, error, duration) and the failed hosts to run again. Exit status: 0 every "
                    "host ok, 1 a host failed or was unreachable, 65 a bad fleet or arguments, 73 pyinfra "
                    "missing (docs/fleet.md).")
    p.add_argument("action", choices=("plan", "apply", "install", "rollback", "confirm"),
                   help="what to do on each host")
    p.add_argument("--fleet", metavar="FILE", required=True, help="the fleet.toml naming the hosts")
    p.add_argument("--on", metavar="NAME|@TAG", action="append",
                   help="only this host, or the hosts with this tag (may be repeated)")
    p.add_argument("--parallel", metavar="N", type=_count, default=0,
                   help="at most N hosts at a time (default: all)")
    p.add_argument("--fail-percent", metavar="P", type=_percent,
                   help="stop once more than P%% of the hosts failed (default: never stop the others)")
    p.add_argument("--diff", action="store_true", help="apply: show each host's plan first (a plan run, then apply)")
    p.add_argument("--json", action="store_true",
                   help="print the merged report as one JSON document instead of the table (docs/json.md)")
    p.add_argument("--report", metavar="FILE",
                   help="also write the merged report as one JSON document to FILE, besides the table (the "
                        "error document when the run cannot start)")
