"""The handler of ``freshroot deploy``."""

from __future__ import annotations

import argparse
import sys

from freshroot.deploy.fleet import load
from freshroot.errors import EXIT_FAILURE, OperationError


def deploy(args: argparse.Namespace) -> int:
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
        sys.stdout.write(plans.render() + "\n")
    report = engine.run_batches(hosts, args.action, **options)
    if plans is not None:
        for host, planned in zip(report.hosts, plans.hosts, strict=True):
            host.plan = planned.plan
    if args.json == "-":
        sys.stdout.write(report.dumps())
    else:
        sys.stdout.write(report.render() + "\n")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write(report.dumps())
    return 0 if report.ok else EXIT_FAILURE
