"""The symlink-attack suite against freshroot-tmpfiles and systemd-tmpfiles (newest), as a table.

    .venv/bin/python bench/symlink_attacks.py [--race-rounds 20]

For each attack (tests/tmpfiles/attacks.py): did the tool change root's /secret through a
symlink uid 1000 planted before the run ("planted"), or swapped in while it ran ("raced")?
Prints one row per attack and the totals. Needs root (it chowns to uid 1000).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.tmpfiles.attacks import ATTACKS, planted, raced

ORACLE = Path(os.environ.get("FRESHROOT_ORACLES", Path(__file__).resolve().parent.parent / ".cache/oracles"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--race-rounds", type=int, default=20)
    args = ap.parse_args()
    tools = {
        "freshroot": [str(Path(sys.executable).with_name("freshroot-tmpfiles"))],
        "systemd-262": [str(ORACLE / "systemd-tmpfiles-new")],
    }
    totals = dict.fromkeys(tools, 0)
    print(f"{'attack':8} " + " ".join(f"{t + ' planted':>22} {t + ' raced':>20}" for t in tools))
    for name, line, op in ATTACKS:
        row = []
        for tool, argv in tools.items():
            with tempfile.TemporaryDirectory() as tmp:
                p = planted(argv, Path(tmp) / "root", line, op)
            with tempfile.TemporaryDirectory() as tmp:
                r = raced(argv, Path(tmp) / "root", line, op, rounds=args.race_rounds)
            totals[tool] += p + r
            row.append(f"{'FELL' if p else 'safe':>22} {'FELL' if r else 'safe':>20}")
        print(f"{name:8} " + " ".join(row), flush=True)
    for tool, n in totals.items():
        print(f"{tool}: fell for {n} of {2 * len(ATTACKS)} attacks")


if __name__ == "__main__":
    main()
