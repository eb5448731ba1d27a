"""``freshroot apply`` and ``freshroot plan``: argument parsing only (handlers in freshroot.plan.handlers)."""

from __future__ import annotations

import argparse

from freshroot.cli import ArgumentParser, add_command, add_common


def _seconds(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) <= 86400 * 7:
        raise argparse.ArgumentTypeError(f"{value!r}: a number of seconds from 1 to 604800")
    return int(value)


def register(subparsers: argparse._SubParsersAction[ArgumentParser]) -> None:
    apply = add_command(
        subparsers, "apply", handler="freshroot.plan.handlers:apply_command",
        help="bring the root to the declared state (persistence, /etc, users, snippets)",
        description="Run the whole plan under a lock: builtin steps and activation snippets in "
        "dependency order. A failed step does not stop the others (--fail-fast does); the "
        "exit status is 1 and the failed steps are listed; 65 for a bad declaration or arguments "
        "(then nothing at all is done), 73 for an operation that failed outside any step "
        "(docs/exit-codes.md).",
    )
    add_common(apply, json=True, dry_run=True)
    apply.add_argument("--fail-fast", action="store_true", help="stop at the first failed step")
    apply.add_argument("--fix", action="store_true",
                       help="also replace what was changed by hand (drifted owner/mode, edited /etc files)")
    apply.add_argument("--confirm-timeout", metavar="SECONDS", type=_seconds,
                       help="roll back to the previous generation after SECONDS unless `freshroot confirm` runs "
                       "first (a systemd-run timer, or a detached process without systemd; docs/fleet.md)")
    apply.add_argument("--boot", action="store_true",
                       help="the activation at boot (freshroot-activate.service runs it): the same plan, the "
                       "boot marked first, tmpfiles.d last, failures logged for the journal")
    plan = add_command(
        subparsers, "plan", handler="freshroot.plan.handlers:plan_command",
        help="show what apply would do, as a tree (apply --dry-run)",
        description="Show what apply would do, as a tree (apply --dry-run). Exit status: 0 the "
        "plan is made (nothing to do, or changes to make), 1 apply would fail (a step cannot be "
        "planned, or it lists a refusal: \"refuse PATH: why\"), 65 a bad declaration or "
        "arguments, 73 an operation failed; with --detailed-exitcode, 2 when there are changes "
        "to make and 0 only when there is nothing to do (docs/exit-codes.md).",
    )
    add_common(plan, json=True)
    plan.add_argument("--fix", action="store_true", help="plan as apply --fix would")
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 2 when there are changes to make (as terraform plan -detailed-exitcode); "
                           "0 only when there is nothing to do")
