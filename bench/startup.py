"""Start-up time of ``freshroot --help`` and ``freshroot-tmpfiles --help``.

Runs each command many times, interleaved (so a busy moment of the machine hits all of them
alike), and prints the median wall time of each, as a ratio to ``python -c pass`` (the
floor: what the interpreter costs before freshroot does anything) and to
``systemd-tmpfiles --help`` (the reference, a C program). The target is a median under
50 ms for both freshroot commands; ``--check`` exits 1 when it is missed.

    .venv/bin/python bench/startup.py [--runs 40] [--bin .venv/bin] [--check]

The entry points are taken from --bin (default: the directory of the running python, i.e.
the venv). PYTHONPATH passes through, so a worktree can measure its own src/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 50.0


# An installed freshroot has its bytecode compiled; a checkout gets it on first import,
# unless PYTHONDONTWRITEBYTECODE forbids that and every run compiles every module again.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_once(argv: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, of the child) of one run, in ms."""
    start = time.perf_counter_ns()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter_ns() - start) / 1e6
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv}: exit status {proc.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a median is over {TARGET_MS:.0f} ms")
    args = parser.parse_args()

    python = str(args.bin / "python")
    commands: dict[str, list[str]] = {
        "python -c pass (floor)": [python, "-c", "pass"],
        "freshroot --help": [str(args.bin / "freshroot"), "--help"],
        "freshroot-tmpfiles --help": [str(args.bin / "freshroot-tmpfiles"), "--help"],
    }
    reference = shutil.which("systemd-tmpfiles")
    if reference:
        commands["systemd-tmpfiles --help (reference)"] = [reference, "--help"]
    for argv in commands.values():
        time_once(argv)  # warm the page cache; fails loudly if a command is broken
    samples: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            wall, used = time_once(argv)
            samples[name].append(wall)
            cpu[name].append(used)

    medians = {name: statistics.median(s) for name, s in samples.items()}
    floor = medians["python -c pass (floor)"]
    ref = medians.get("systemd-tmpfiles --help (reference)")
    load = os.getloadavg()[0]
    print(f"{args.runs} runs each, interleaved; load average {load:.1f} on {os.cpu_count()} CPUs; "
          f"PYTHONPATH={os.environ.get('PYTHONPATH', '')!r}")
    print(f"{'command':38} {'median':>9} {'min':>8} {'x floor':>8} {'x systemd':>10} {'cpu median':>11}")
    for name, med in medians.items():
        vs_ref = f"{med / ref:10.1f}" if ref else f"{'-':>10}"
        print(f"{name:38} {med:7.1f}ms {min(samples[name]):6.1f}ms {med / floor:8.2f} {vs_ref} "
              f"{statistics.median(cpu[name]):9.1f}ms")
    missed = [n for n in ("freshroot --help", "freshroot-tmpfiles --help") if medians[n] >= TARGET_MS]
    verdict = "missed by " + ", ".join(missed) if missed else "met"
    print(f"target: median under {TARGET_MS:.0f} ms: {verdict}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
