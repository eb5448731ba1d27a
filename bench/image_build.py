"""`freshroot image build` against calling mksquashfs directly on the same staged tree.

Both sides produce the same image: the reference is the exact mksquashfs command freshroot
runs, given a tree freshroot staged once beforehand, so the ratio is what freshroot adds on
top of the compressor (start-up, parsing the declaration, the ELF closure, copying the tree,
the rename into place). Runs alternate, the median of each side is compared, and the target
is an overhead of at most 5% (ratio <= 1.05). Wall time and CPU time (user + system of the
process and its children, from wait4) are both reported: on a machine shared with other work
the wall-clock medians swing by tens of percent either way, the CPU time does not.

    python bench/image_build.py [--reps N] [--content PATH ...] [--format squashfs|erofs]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from freshroot.image.build import builder_argv, stage_tree  # noqa: E402
from freshroot.image.declaration import load_table  # noqa: E402
from freshroot.image.model import ImageFormat, parse_portable  # noqa: E402
from freshroot.run import BASE_ENV  # noqa: E402

TARGET = 1.05


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the process and everything it waited for)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with status {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--content", action="append", default=None,
                        help="host paths to pack (default: /usr/sbin/sshd and its closure)")
    parser.add_argument("--format", choices=("squashfs", "erofs"), default="squashfs")
    args = parser.parse_args()
    contents = args.content or ["/usr/sbin/sshd"]

    with tempfile.TemporaryDirectory(prefix="bench-image-") as scratch:
        work = Path(scratch)
        (work / "demo.service").write_text("[Service]\nExecStart=/usr/sbin/sshd -D\n")
        config = work / "freshroot.toml"
        config.write_text(
            f'[portable.demo]\nversion = "1"\nunits = ["demo.service"]\nformat = "{args.format}"\n'
            f"contents = [{', '.join(repr(c).replace(chr(39), chr(34)) for c in contents)}]\n")
        image = parse_portable(load_table([str(config)]))["demo"].with_format(ImageFormat(args.format))

        tree = work / "tree"
        tree.mkdir(mode=0o755)
        stage_tree(image, str(tree))
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        env.pop("SOURCE_DATE_EPOCH", None)
        ours_argv = [sys.executable, "-m", "freshroot", "image", "build", "demo", "--config", str(config),
                     "--output", str(work / "ours")]
        ref_out = work / "ref.raw"
        ref_argv = builder_argv(image, str(tree), str(ref_out), 0)

        ours: list[tuple[float, float]] = []
        ref: list[tuple[float, float]] = []
        timed(ours_argv, env)  # warm the page cache for both sides
        for rep in range(args.reps):
            # Alternate which side goes first, so drifting load on a shared machine hits both alike.
            for side in ((0, 1) if rep % 2 == 0 else (1, 0)):
                if side == 0:
                    ref_out.unlink(missing_ok=True)
                    ref.append(timed(ref_argv, dict(BASE_ENV)))  # the environment freshroot gives it
                else:
                    ours.append(timed(ours_argv, env))
        same = sha256(ref_out) == sha256(work / "ours" / image.file_name)

    print(f"image build ({args.format}, {', '.join(contents)}), {args.reps} repetitions, medians:")
    ok = same
    for i, what in enumerate(("wall time", "CPU time")):
        ref_med = statistics.median(r[i] for r in ref)
        ours_med = statistics.median(o[i] for o in ours)
        ratio = ours_med / ref_med
        ok = ok and ratio <= TARGET
        print(f"  {what:9}: {ref_argv[0]} on a staged tree {ref_med * 1000:8.1f} ms, freshroot image build "
              f"{ours_med * 1000:8.1f} ms, ratio {ratio:.3f} (overhead {100 * (ratio - 1):+.1f}%, "
              f"target <= {100 * (TARGET - 1):.0f}%)")
    print(f"  same bytes as the direct build: {'yes' if same else 'NO'}")
    print("  (wall time is noisy on a shared machine; CPU time counts only the work done)")
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
