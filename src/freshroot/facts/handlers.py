"""``freshroot facts``."""

from __future__ import annotations

import argparse
import json
import sys

from freshroot.facts.machine import gather, text


def facts(args: argparse.Namespace) -> int:
    found = gather()
    if args.json:
        sys.stdout.write(json.dumps(found.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(text(found))
    return 0
