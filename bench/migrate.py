"""``freshroot migrate`` of a tree against ``cp -a`` plus ``sync`` of the same tree, on the same
file system (target: migrate at most 1.2x the reference's wall time), and against ``cp -a``,
``sync`` and ``rm -rf`` of the source: the least a move that checks nothing costs.

The reference copies and makes the copy durable. Migrate copies (in the kernel:
copy_file_range, or a reflink) under a read lease on each file, makes the copy durable with
one syncfs, renames it into place, and then, before it removes each of the root's files,
checks it under a read lease: on ext4, XFS and btrfs against the snapshot its copy took
(fstat), elsewhere (tmpfs) by comparing every byte with storage's copy (docs/persistence.md,
"Never lose data"); and it removes the root's copy, which the reference leaves. The checks
and that removal are what the ratio pays for; the second reference shows what the removal
alone costs. The tree is ``--size-mb`` MiB (default 1024): a quarter in 16 large files, the
rest in small files of 4 to 64 KiB, in 64 directories. It is made once; before each timed
run it is copied afresh (untimed, then ``sync``), so that every run starts with the source in
the page cache and nothing dirty. Each runs as its own process, migrate from compiled
modules (as an installed package runs).

    sudo .venv/bin/python bench/migrate.py [--fs ext4|xfs|btrfs|here] [--dir DIR] [--size-mb N] [--reps N]
                                           [--src DIR] [--settle S]

``--fs ext4`` (the default), ``xfs`` or ``btrfs``: every timed run gets a new file system of
that type (mkfs's defaults; ext4 with its journal) on a loop device backed by a sparse file
in ``--dir``, so no run inherits another's deleted inodes or fragmentation. On btrfs both
reflink the data (``cp`` since coreutils 9), so the ratio is all per-file work.
``--fs here``: the runs share ``--dir``'s own file system
(on a tmpfs, where sync costs nothing, the ratio is the CPU work alone: the comparison reads
every byte twice where ``cp`` copies it once). ``--dir``: where the trees go (default: a
temporary directory in /var/tmp). ``--src``: the freshroot sources to measure (default: this
checkout's src/), e.g. an older commit's for a before and after in the same conditions.
``--settle``: seconds to wait after each untimed setup before the timed run (with ``--fs
here``): an ext4 without a journal skips the inodes deleted in the last 60 s when it
allocates one (``recently_deleted``), so a run after a removal of 23,000 files spends most
of its CPU scanning past them; cp's own time swung from 1.5 s to 7.5 s with it on /tmp here.
The load average is printed with each run.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def generate(top: Path, size: int) -> tuple[int, int]:
    """Files and bytes written below ``top``: a quarter of ``size`` in 16 big files, the rest
    in small ones."""
    top.mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    files = written = 0
    big = size // 4 // 16
    for i in range(16):
        with open(top / f"big{i:02d}", "wb") as f:
            left = big
            while left > 0:
                left -= f.write(chunk[: min(left, len(chunk))])
        files, written = files + 1, written + big
    n = 0
    while written < size:
        d = top / f"dir{n % 64:02d}"
        d.mkdir(exist_ok=True)
        length = 4096 * (1 + n % 16)
        offset = (n * 4096) % (len(chunk) - length)
        (d / f"f{n:06d}").write_bytes(chunk[offset: offset + length])
        files, written, n = files + 1, written + length, n + 1
    return files, written


def remove(path: Path) -> None:
    """``rm -rf``, on 8 threads: on ext4 mounted with ``discard`` each file's removal waits
    ~5 ms for the journal, so one thread takes minutes for the 23,000 files (untimed)."""
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    with ThreadPoolExecutor(8) as pool:
        for top in path.iterdir():
            parts = list(top.iterdir()) if top.is_dir() and not top.is_symlink() else [top]
            list(pool.map(lambda p: shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(), parts))
    shutil.rmtree(path)


def timed(argv: list[str], **kw: object) -> tuple[float, float, str]:
    """Seconds ``argv`` took, the CPU seconds it used (user and system, its children's
    included: less swayed than the wall time by other work on the machine), its stderr."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # type: ignore[call-overload]
                          text=True, **kw)
    took = time.perf_counter() - start
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime, proc.stderr


def phases(stderr: str) -> str:
    """Where a migrate's time went, from its progress lines (one a phase without a terminal)."""
    found = re.findall(r"^(copy|sync|check and remove) [^:]*:.* in ((?:\d+ min )?[\d.]+ s)", stderr, re.M)
    return ", ".join(f"{name} {took}" for name, took in found)


class Scratch:
    """Where one timed run happens: a new file system on a loop device (``--fs ext4``, ``xfs``
    or ``btrfs``), or a directory of ``--dir``'s own file system (``--fs here``)."""

    def __init__(self, base: Path, fs: str, size: int) -> None:
        self.base, self.fs, self.size = base, fs, size
        self.fresh = fs != "here"
        self.top = base / "fs"

    def __enter__(self) -> Path:
        if self.fresh:
            image = self.base / "fs.img"
            image.unlink(missing_ok=True)
            with open(image, "wb") as f:
                f.truncate(3 * self.size + (512 << 20))
            subprocess.run([f"mkfs.{self.fs}", "-q", "-f" if self.fs in ("xfs", "btrfs") else "-F", str(image)],
                           check=True, stdout=subprocess.DEVNULL)
            self.top.mkdir(exist_ok=True)
            subprocess.run(["mount", "-o", "loop", str(image), str(self.top)], check=True)
        else:
            remove(self.top)
            self.top.mkdir()
        return self.top

    def __exit__(self, *_: object) -> None:
        if self.fresh:
            subprocess.run(["umount", str(self.top)], check=True)
            (self.base / "fs.img").unlink()
        else:
            remove(self.top)


def prepare(top: Path, master: Path) -> Path:
    """The root below ``top``, holding a fresh copy of the tree at /var/lib/big; the
    declaration beside it."""
    root = top / "root"
    for d in ("etc", "persist", "var/lib"):
        (root / d).mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (top / "decl.toml").write_text('[persist."/persist"]\ndirectories = ["/var/lib/big"]\n')
    subprocess.run(["cp", "-a", str(master), str(root / "var/lib/big")], check=True)
    os.sync()
    return root


REFERENCES = {
    "cp": ('cp -a "$0" "$1" && sync', "cp -a && sync"),
    "cp+rm": ('cp -a "$0" "$1" && sync && rm -rf "$0"', "cp -a && sync && rm -rf"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fs", choices=("ext4", "xfs", "btrfs", "here"), default="ext4",
                        help="a new file system of this type on a loop device for each run (default: ext4), "
                             "or --dir's own file system")
    parser.add_argument("--dir", help="where the trees go (default: a temporary directory in /var/tmp)")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--src", type=Path, default=REPO / "src", help="the freshroot sources to measure")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait before each timed run")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("migrate.py: needs root (migrate takes the apply lock of the root)", file=sys.stderr)
        return 1
    times: dict[str, list[float]] = {"freshroot": [], "cp": [], "cp+rm": []}
    cpus: dict[str, list[float]] = {name: [] for name in times}
    with tempfile.TemporaryDirectory(prefix="freshroot-bench-migrate-", dir=args.dir or "/var/tmp") as tmp:
        base = Path(tmp)
        master = base / "master"
        start = time.perf_counter()
        files, size = generate(master, args.size_mb << 20)
        where = "this file system" if args.fs == "here" else f"a new {args.fs} on a loop device for each run"
        print(f"generated {files} files, {size / (1 << 20):.0f} MiB in {time.perf_counter() - start:.1f} s "
              f"({base}, {where})")
        # Compiled once, as an installed package is (a checkout run with PYTHONDONTWRITEBYTECODE
        # would compile every module at each start: a third of a second).
        env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "PYTHONPYCACHEPREFIX": str(base / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(args.src.resolve())], check=True, env=env)
        for _ in range(args.reps):
            for which, taken in times.items():
                with Scratch(base, args.fs, size) as top:
                    root = prepare(top, master)
                    time.sleep(args.settle)
                    load = f"load {os.getloadavg()[0]:.1f}"
                    if which == "freshroot":
                        took, cpu, err = timed([sys.executable, "-m", "freshroot", "migrate", "--root", str(root),
                                                "--config", str(top / "decl.toml"), "/var/lib/big"], env=env)
                        print(f"migrate {took:.2f} s ({cpu:.2f} s CPU, {load}): {phases(err)}")
                        assert not os.listdir(root / "var/lib/big")
                        assert len(list((root / "persist/var/lib/big").rglob("*"))) >= files
                    else:
                        script, label = REFERENCES[which]
                        took, cpu, _ = timed(["sh", "-c", script, str(root / "var/lib/big"), str(top / "copy")])
                        print(f"{label} {took:.2f} s ({cpu:.2f} s CPU, {load})")
                    taken.append(took)
                    cpus[which].append(cpu)
    mib = size / (1 << 20)
    mine = statistics.median(times["freshroot"])
    print(f"freshroot migrate:          {mine:6.2f} s  {mib / mine:7.1f} MiB/s   (median of {args.reps}: "
          f"{', '.join(f'{t:.2f}' for t in times['freshroot'])})")
    for which, (_, label) in REFERENCES.items():
        theirs = statistics.median(times[which])
        print(f"{label + ':':27} {theirs:6.2f} s  {mib / theirs:7.1f} MiB/s   "
              f"({', '.join(f'{t:.2f}' for t in times[which])})")
    for which, (_, label) in REFERENCES.items():
        # Each migrate against the reference run right after it: on a shared machine the load
        # drifts between runs, and runs close together see about the same.
        pairs = [a / b for a, b in zip(times["freshroot"], times[which], strict=True)]
        target = " (target <= 1.2x)" if which == "cp" else ""
        print(f"ratio: migrate {mine / statistics.median(times[which]):.2f}x {label}{target}; "
              f"of each pair: median {statistics.median(pairs):.2f}x ({', '.join(f'{r:.2f}' for r in pairs)})")
    print("CPU time (medians): " + ", ".join(f"{name} {statistics.median(c):.2f} s" for name, c in cpus.items())
          + f"; migrate {statistics.median(cpus['freshroot']) / statistics.median(cpus['cp']):.2f}x cp -a && sync")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
