"""--clean over a large generated tree: freshroot against systemd-tmpfiles (newest) in one run.

    .venv/bin/python bench/tmpfiles_clean.py [--entries 1000000] [--reps 3] [--globs 20]

The tree is directories of 1,000 files each, every other file older than the age. It is built
once as a template; each run gets a fresh copy made with hard links (cp -al), so both tools
see identical trees. The age-by is "am" because hard-linking changes ctime. Reported: median
wall time and peak RSS of each tool, and the ratios (targets: at most 1.3x time, 2x memory).
With --globs N, the configuration also has N glob lines (x exclusions that match nothing), to
show the cost does not grow as entries x globs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORACLE = Path(os.environ.get("FRESHROOT_ORACLES", Path(__file__).parent.parent / ".cache/oracles"))
OURS = [str(Path(sys.executable).with_name("freshroot-tmpfiles"))]  # the venv entry point


def build_template(root: Path, entries: int) -> None:
    now = time.time()
    old = (now - 7200, now - 7200)
    per_dir = 1000
    for d in range((entries + per_dir - 1) // per_dir):
        dp = root / "t" / f"d{d:05d}"
        dp.mkdir(parents=True)
        for f in range(min(per_dir, entries - d * per_dir)):
            p = dp / f"f{f:04d}"
            os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
            if f % 2 == 0:
                os.utime(p, old)


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed: {err}")
    return elapsed, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--globs", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="freshroot-bench-") as tmp:
        base = Path(tmp)
        print(f"building a template tree of {args.entries:,} files ...", flush=True)
        build_template(base / "template", args.entries)
        conf = base / "clean.conf"
        lines = ["d /t - - - am:1h"] + [f"x /t/*/nomatch{i}-*" for i in range(args.globs)]
        conf.write_text("\n".join(lines) + "\n")
        results: dict[str, list[tuple[float, int]]] = {"systemd-tmpfiles": [], "freshroot": []}
        for rep in range(args.reps):
            for name in list(results):
                root = base / "work"
                shutil.rmtree(root, ignore_errors=True)
                subprocess.run(["cp", "-al", str(base / "template"), str(root)], check=True)
                argv = ([str(ORACLE / "systemd-tmpfiles-new")] if name == "systemd-tmpfiles" else OURS)
                results[name].append(timed([*argv, f"--root={root}", "--clean", str(conf)]))
                print(f"  rep {rep + 1} {name}: {results[name][-1][0]:.2f} s, {results[name][-1][1]} KiB", flush=True)
        t_ref = statistics.median(t for t, _ in results["systemd-tmpfiles"])
        t_our = statistics.median(t for t, _ in results["freshroot"])
        m_ref = statistics.median(m for _, m in results["systemd-tmpfiles"])
        m_our = statistics.median(m for _, m in results["freshroot"])
        print(f"entries {args.entries:,}  globs {args.globs}")
        print(f"systemd-tmpfiles: {t_ref:.2f} s, {m_ref} KiB")
        print(f"freshroot:        {t_our:.2f} s, {m_our} KiB")
        print(f"ratio time {t_our / t_ref:.2f}x (target <= 1.3x), memory {m_our / m_ref:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
