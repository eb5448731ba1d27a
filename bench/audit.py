"""``freshroot audit`` over a generated 1,000,000-entry root against ``find ROOT -xdev`` on
the same tree (target: at most 1.5x find's wall time), and ``audit --sizes`` against
``du -sx`` (both stat every file; find never does).

All walk the whole root without crossing mounts; the audit also groups by directory and
skips the persisted paths (bind mounts from a separate storage file system, as on a real
machine). The tree lives on tmpfs inside a private mount namespace this script enters
itself; each is run once first so the dentry cache is warm for each. Needs root.

    sudo .venv/bin/python bench/audit.py [--entries N] [--reps N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from freshroot.config.table import Table
from freshroot.fs import mount
from freshroot.fs.ops import open_root
from freshroot.persist.audit import audit
from freshroot.persist.planner import plan
from freshroot.persist.steps import load, run_actions
from freshroot.plan.action import Context

TOPS = ("usr/share", "usr/lib", "var/lib", "etc", "home/alice", "opt", "srv", "var/log")
PERSISTED = ("/var/lib/pkg000", "/var/lib/pkg001", "/home/alice/pkg000", "/var/log/pkg000")


def generate(root: Path, entries: int) -> int:
    """About ``entries`` files and directories: TOPS x packages x subdirectories x files."""
    files_per_dir = 90
    made = 0
    n = 0
    while made < entries:
        top = TOPS[n % len(TOPS)]
        pkg = root / top / f"pkg{n // len(TOPS):03d}"
        for s in range(10):
            d = pkg / f"sub{s}"
            d.mkdir(parents=True)
            made += 1
            for f in range(files_per_dir):
                fd = os.open(d / f"f{f}", os.O_WRONLY | os.O_CREAT, 0o644)
                if f % 7 == 0:
                    os.write(fd, b"x" * (f * 13))
                os.close(fd)
            made += files_per_dir
        n += 1
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("audit.py: needs root (tmpfs and bind mounts in a private mount namespace)", file=sys.stderr)
        return 1
    mount.unshare_mounts()
    with tempfile.TemporaryDirectory(prefix="freshroot-bench-audit-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        mount.mount("tmpfs", str(root), "tmpfs")
        start = time.perf_counter()
        made = generate(root, args.entries)
        print(f"generated {made} entries in {time.perf_counter() - start:.1f} s")
        (root / "persist").mkdir()
        mount.mount("tmpfs", str(root / "persist"), "tmpfs")  # storage: its own file system
        (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
        dirs = ", ".join(f'"{p}"' for p in PERSISTED)
        table = Table(tomllib.loads(f'[persist."/persist"]\ndirectories = [{dirs}]\nmigrate = "move"\n'))
        fd = open_root(str(root))
        ctx = Context(fd, str(root))
        p = load(table, fd)
        assert run_actions(plan(p, ctx), ctx).ok

        def ours(*, sizes: bool) -> float:
            t = time.perf_counter()
            report = audit(p, ctx, sizes=sizes)
            took = time.perf_counter() - t
            assert report.entries > made * 0.9
            return took

        def tool(argv: list[str]) -> float:
            t = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            return time.perf_counter() - t

        find = ["find", str(root), "-xdev"]
        du = ["du", "-sx", str(root)]
        ours(sizes=True)
        ours(sizes=False)
        tool(find)
        tool(du)
        a: list[float] = []
        c: list[float] = []
        b: list[float] = []
        d: list[float] = []
        for _ in range(args.reps):
            a.append(ours(sizes=False))
            b.append(tool(find))
            c.append(ours(sizes=True))
            d.append(tool(du))
        os.close(fd)
        mount.umount(str(root), mount.MNT.DETACH)
    mine, ref = statistics.median(a), statistics.median(b)
    sized, du_ref = statistics.median(c), statistics.median(d)
    print(f"freshroot audit:          {mine:6.2f} s   (median of {args.reps})")
    print(f"find ROOT -xdev:          {ref:6.2f} s")
    print(f"freshroot audit --sizes:  {sized:6.2f} s   (one stat per file)")
    print(f"du -sx ROOT:              {du_ref:6.2f} s   (one stat per file, in C)")
    print(f"ratio: audit {mine / ref:.2f}x find's time (target <= 1.5x); "
          f"audit --sizes {sized / du_ref:.2f}x du's ({sized / ref:.2f}x find's; du itself {du_ref / ref:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
