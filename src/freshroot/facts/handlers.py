"""``freshroot facts``."""

from __future__ import annotations

import argparse
import sys

from freshroot.facts.machine import gather, text
from freshroot.output import print_json


def facts(args: argparse.Namespace) -> int:
    found = gather()
    if args.json:
        print_json(found.to_json())
    else:
        sys.stdout.write(text(found))
    return 0
