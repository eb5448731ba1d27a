"""``freshroot apply`` and ``freshroot plan``: argument parsing only (handlers in freshroot.plan.handlers)."""

from __future__ import annotations

import argparse

from freshroot.cli import ArgumentParser, add_command, add_common


def register(subparsers: argparse._SubParsersAction[ArgumentParser]) -> None:
    apply = add_command(
        subparsers, "apply", handler="freshroot.plan.handlers:apply_command",
        help="bring the root to the declared state (persistence, /etc, users, snippets)",
        description="Run the whole plan under a lock: builtin steps and activation snippets in "
        "dependency order. A failed step does not stop the others (--fail-fast does); the "
        "exit status is 1 and the failed steps are listed.",
    )
    add_common(apply, json=True, dry_run=True)
    apply.add_argument("--fail-fast", action="store_true", help="stop at the first failed step")
    apply.add_argument("--fix", action="store_true",
                       help="also replace what was changed by hand (drifted owner/mode, edited /etc files)")
    apply.add_argument("--boot", action="store_true",
                       help="the activation at boot (freshroot-activate.service runs it): the same plan, the "
                       "boot marked first, tmpfiles.d last, failures logged for the journal")
    plan = add_command(
        subparsers, "plan", handler="freshroot.plan.handlers:plan_command",
        help="show what apply would do, as a tree (apply --dry-run)",
    )
    add_common(plan, json=True)
    plan.add_argument("--fix", action="store_true", help="plan as apply --fix would")
