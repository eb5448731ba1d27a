"""Apply a declaration of 100 directories and 20 files to a fresh root: freshroot against an
impermanence-style baseline that spawns one shell process per entry.

The baseline does per entry what impermanence's activation scripts do, in a shell of its
own: create the storage directory if missing, create the target and copy owner and mode
from storage (chown/chmod --reference), bind-mount; for a file, bind-mount it if storage
has it, else symlink. Both run on the same generated trees (root and storage on tmpfs, as a
wiped root is), inside a private mount namespace this script enters itself. Needs root.

    sudo .venv/bin/python bench/persist_apply.py [--reps N]

Targets (issue 5): freshroot at least 20x faster than the baseline, and under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from freshroot.config.table import Table
from freshroot.fs import mount
from freshroot.fs.ops import open_root
from freshroot.persist.planner import plan
from freshroot.persist.steps import load, run_actions
from freshroot.plan.action import Context
from freshroot.run import run

DIRS = [f"/var/lib/svc{i:03d}/state" if i % 3 else f"/var/lib/svc{i:03d}" for i in range(90)] + \
       [f"/home/alice/.config/app{i}" for i in range(10)]
FILES = [f"/etc/conf.d/file{i:02d}.conf" for i in range(20)]

BASELINE_DIR = r"""
src="$1$2"; tgt="$2"
[ -d "$src" ] || { mkdir -p "$src"; chown "$3" "$src"; chmod "$4" "$src"; }
[ -d "$tgt" ] || mkdir -p "$tgt"
chown --reference="$src" "$tgt"
chmod --reference="$src" "$tgt"
mount --bind "$src" "$tgt"
"""
BASELINE_FILE = r"""
src="$1$2"; tgt="$2"
mkdir -p "$(dirname "$tgt")"
if [ -L "$tgt" ] && [ "$(readlink -f "$tgt")" = "$src" ]; then :
elif [ -s "$tgt" ]; then echo "A file already exists at $tgt" >&2; exit 1
elif [ -e "$src" ]; then touch "$tgt"; mount --bind "$src" "$tgt"
else ln -s "$src" "$tgt"
fi
"""


def declaration() -> Table:
    dirs = ", ".join(f'"{d}"' for d in DIRS)
    files = ", ".join(f'"{f}"' for f in FILES)
    return Table(tomllib.loads(f'[persist."/persist"]\ndirectories = [{dirs}]\nfiles = [{files}]\n'))


def make_tree(base: Path, n: int) -> Path:
    """A fresh root holding only the OS's few files, and storage holding every entry."""
    root = base / f"root{n}"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nalice:x:1000:\n")
    storage = root / "persist"
    for d in DIRS:
        (storage / d.lstrip("/")).mkdir(parents=True)
        (storage / d.lstrip("/") / "data").write_text("state")
    for i, f in enumerate(FILES):
        p = storage / f.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if i % 2 == 0:  # half exist in storage (bound), half do not yet (symlinked)
            p.write_text("conf")
    return root


def freshroot_apply(root: Path, table: Table) -> float:
    start = time.perf_counter()
    fd = open_root(str(root))
    ctx = Context(fd, str(root))
    outcome = run_actions(plan(load(table, fd), ctx), ctx)
    took = time.perf_counter() - start
    assert outcome.ok, outcome.failed
    os.close(fd)
    return took


def baseline_apply(root: Path) -> float:
    # The baseline works on host paths: give it a root where "/" is the scratch root, as
    # the activation script sees it, by prefixing every path.
    start = time.perf_counter()
    for d in DIRS:
        run(["bash", "-c", BASELINE_DIR.replace('tgt="$2"', f'tgt="{root}$2"'), "_", f"{root}/persist", d,
             "root:root", "0755"])
    for f in FILES:
        run(["bash", "-c", BASELINE_FILE.replace('tgt="$2"', f'tgt="{root}$2"'), "_", f"{root}/persist", f])
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("persist_apply.py: needs root (bind mounts in a private mount namespace)", file=sys.stderr)
        return 1
    mount.unshare_mounts()
    table = declaration()
    ours: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="freshroot-bench-") as tmp:
        base = Path(tmp)
        mount.mount("tmpfs", str(base), "tmpfs")
        for n in range(args.reps):
            a, b = make_tree(base, 2 * n), make_tree(base, 2 * n + 1)
            ours.append(freshroot_apply(a, table))
            theirs.append(baseline_apply(b))
            # Same result: every entry present on both roots.
            for d in DIRS:
                assert (a / d.lstrip("/") / "data").read_text() == (b / d.lstrip("/") / "data").read_text()
        mount.umount(str(base), mount.MNT.DETACH)
        shutil.rmtree(base, ignore_errors=True)
    mine, ref = statistics.median(ours), statistics.median(theirs)
    print(f"entries: {len(DIRS)} directories, {len(FILES)} files; median of {args.reps}")
    print(f"freshroot apply:          {mine * 1000:8.1f} ms")
    print(f"one shell per entry:      {ref * 1000:8.1f} ms")
    print(f"ratio: freshroot is {ref / mine:.1f}x faster (target >= 20x); "
          f"{'under' if mine < 0.1 else 'OVER'} 100 ms (target < 100 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
