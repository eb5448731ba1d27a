"""The handler of ``freshroot deploy``."""

from __future__ import annotations

import argparse
import sys

from freshroot.deploy.fleet import load
from freshroot.errors import EXIT_FAILURE, FreshrootError, OperationError
from freshroot.output import colour_wanted, failure_document, print_json


def deploy(args: argparse.Namespace) -> int:
    """``--json``: the document on stdout, nothing else there; ``--report FILE``: the document
    in FILE as well, the error document too when it fails (the CLI prints the message)."""
    try:
        return _deploy(args, to_stdout=args.json)
    except FreshrootError as e:
        if args.report:
            with open(args.report, "w", encoding="utf-8") as f:
                print_json(failure_document(e), f)
        raise


def _deploy(args: argparse.Namespace, *, to_stdout: bool) -> int:
    fleet = load(args.fleet)
    hosts = fleet.select(args.on)
    try:
        from freshroot.deploy import engine

        engine.patch_gevent()
    except ImportError as e:
        raise OperationError(f"freshroot deploy needs pyinfra ({e})",
                             hint="install the extra: pip install 'freshroot[pyinfra]'") from None
    plans = None
    options = {"fleet": args.fleet, "parallel": args.parallel, "fail_percent": args.fail_percent}
    if args.diff and args.action == "apply":
        plans = engine.run_batches(hosts, "plan", **options)
        if not to_stdout:  # with --json, each host's plan is in its report
            sys.stdout.write(plans.render(colour=colour_wanted(sys.stdout)) + "\n")
    report = engine.run_batches(hosts, args.action, **options)
    if plans is not None:
        for host, planned in zip(report.hosts, plans.hosts, strict=True):
            host.plan = planned.plan
    if to_stdout:
        print_json(report.to_json())
    else:
        sys.stdout.write(report.render(colour=colour_wanted(sys.stdout)) + "\n")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            print_json(report.to_json(), f)
    return 0 if report.ok else EXIT_FAILURE
