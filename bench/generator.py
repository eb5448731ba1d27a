"""freshroot-generator against systemd-fstab-generator, on the same 100 bind mounts.

freshroot-generator runs at every boot, before anything else, as a Python process; the
reference is systemd's own C generator turning an fstab of the same 100 bind mounts (the way
a hand-written impermanence-style fstab would) into mount units. Both are run as systemd runs
them (three output directories), each repetition into fresh directories; the median of the
wall times is reported, and the ratio. freshroot also writes the prepare and files units
and reads 20 files, which the fstab cannot express.

    .venv/bin/python bench/generator.py [--reps N]
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

SRC = Path(__file__).resolve().parent.parent / "src"
FSTAB_GENERATOR = next((p for p in ("/usr/lib/systemd/system-generators/systemd-fstab-generator",
                                    "/lib/systemd/system-generators/systemd-fstab-generator") if os.path.exists(p)), "")
DIRS = [f"/var/lib/svc{i:03d}" for i in range(90)] + [f"/home/alice/.config/app{i}" for i in range(10)]
FILES = [f"/etc/conf.d/file{i:02d}.conf" for i in range(20)]


def make_root(top: Path) -> tuple[Path, Path]:
    root = top / "root"
    (root / "etc" / "freshroot").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nalice:x:1000:\n")
    dirs = ", ".join(f'"{d}"' for d in DIRS)
    files = ", ".join(f'"{f}"' for f in FILES)
    (root / "etc" / "freshroot" / "freshroot.toml").write_text(
        f'[persist."/persist"]\nhide-mounts = true\ndirectories = [{dirs}]\nfiles = [{files}]\n')
    fstab = top / "fstab"
    fstab.write_text("".join(f"/persist{d} {d} none bind,x-gvfs-hide 0 0\n" for d in DIRS))
    return root, fstab


def timed(argv: list[str], env: dict[str, str], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    dirs = [out / n for n in ("normal", "early", "late")]
    for d in dirs:
        d.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run([*argv, *map(str, dirs)], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    if not FSTAB_GENERATOR:
        sys.stderr.write("systemd-fstab-generator not found\n")
        return 1
    # On a tmpfs, as systemd's /run/systemd/generator is.
    with tempfile.TemporaryDirectory(prefix="freshroot-bench-gen-", dir="/dev/shm") as tmp:
        top = Path(tmp)
        root, fstab = make_root(top)
        code = "import sys; from freshroot.systemd.generator import main; sys.exit(main())"
        ours_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), "FRESHROOT_GENERATOR_ROOT": str(root),
                    "SYSTEMD_IN_INITRD": "0"}
        ref_env = {"PATH": "/usr/bin:/bin", "SYSTEMD_FSTAB": str(fstab), "SYSTEMD_IN_INITRD": "0",
                   "SYSTEMD_PROC_CMDLINE": "quiet"}
        ours, ref = [], []
        for _ in range(args.reps):
            ours.append(timed([sys.executable, "-c", code],
                              ours_env, top / "ours"))
            ref.append(timed([FSTAB_GENERATOR], ref_env, top / "ref"))
        written = len(list((top / "ours" / "normal").glob("*.mount")))
        ref_written = len(list((top / "ref" / "normal").glob("*.mount")))
        o, r = statistics.median(ours), statistics.median(ref)
        print(f"freshroot-generator:      {o * 1000:7.1f} ms median of {args.reps} "
              f"({written} mount units + 2 services)")
        print(f"systemd-fstab-generator:  {r * 1000:7.1f} ms median of {args.reps} ({ref_written} mount units)")
        print(f"ratio freshroot / systemd: {o / r:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
