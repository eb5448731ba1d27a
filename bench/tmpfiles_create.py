"""Benchmark: freshroot-tmpfiles --create against systemd-tmpfiles (newest) in the same run.

1. A generated 10,000-line configuration (d, f with content, L, z, w, with users and groups)
   applied to an empty root. Target: median wall time at most 1.5x systemd's.
2. This machine's /usr/lib/tmpfiles.d with --create --boot into a scratch root (start-up
   bound: the ratio is reported, not held to a target).

Both tools run as separate processes (freshroot through ``python -c``, as the command would
be started), several repetitions each, alternating, median wall time compared.

    PYTHONPATH=src python bench/tmpfiles_create.py [--reps 7] [--lines 10000]
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

ROOT = Path(__file__).resolve().parent.parent
ORACLES = Path(os.environ.get("FRESHROOT_ORACLES", ROOT / ".cache" / "oracles"))
PASSWD = "root:x:0:0::/root:/bin/sh\n" + "".join(f"user{i}:x:{1000 + i}:{1000 + i}::/home/u{i}:/bin/sh\n"
                                                   for i in range(50))
GROUP = "root:x:0:\n" + "".join(f"group{i}:x:{1000 + i}:\n" for i in range(50))


def generate(lines: int) -> str:
    """d, f, L, z and w lines in the shape real configurations have: directories with files
    and links in them, owners by name, some adjusted afterwards."""
    out: list[str] = []
    i = 0
    while len(out) < lines:
        top = f"/srv/b{i // 100}/d{i}"
        u, g = f"user{i % 50}", f"group{(i * 7) % 50}"
        out.append(f"d {top} 0750 {u} {g} -")
        out.append(f"f {top}/config 0640 {u} {g} - setting={i}\\n")
        out.append(f"L {top}/current - - - - config")
        out.append(f"z {top}/config 0600 {u} -")
        out.append(f"w {top}/config - - - - more={i}\\n")
        i += 1
    return "\n".join(out[:lines]) + "\n"


def fresh_root(base: Path, name: str) -> Path:
    root = base / name
    if root.exists():
        shutil.rmtree(root)
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root


def run_systemd(root: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([str(ORACLES / "systemd-tmpfiles-new"), f"--root={root}", *args],
                   check=False, capture_output=True)
    return time.perf_counter() - start


def run_freshroot(root: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    code = "import sys; from freshroot.tmpfiles.command import main; sys.exit(main())"
    subprocess.run([sys.executable, "-c", code, f"--root={root}", *args], check=False, capture_output=True, env=env)
    return time.perf_counter() - start


def compare(name: str, args: list[str], reps: int, base: Path) -> float:
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(reps):
        theirs.append(run_systemd(fresh_root(base, "s"), args))
        ours.append(run_freshroot(fresh_root(base, "f"), args))
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"{name}: systemd-tmpfiles {statistics.median(theirs) * 1000:.1f} ms, "
          f"freshroot-tmpfiles {statistics.median(ours) * 1000:.1f} ms (median of {reps}); ratio {ratio:.2f}x")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--target", type=float, default=1.5)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fr-bench-") as tmp:
        base = Path(tmp)
        conf = base / "generated.conf"
        conf.write_text(generate(opts.lines))
        ratio = compare(f"{opts.lines}-line configuration", ["--create", str(conf)], opts.reps, base)
        host = sorted(str(p) for p in Path("/usr/lib/tmpfiles.d").glob("*.conf"))
        compare(f"/usr/lib/tmpfiles.d ({len(host)} files) --create --boot", ["--create", "--boot", *host],
                opts.reps, base)
    if ratio > opts.target:
        print(f"over target: {ratio:.2f}x > {opts.target}x")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
