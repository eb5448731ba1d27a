"""Reading tmpfiles.d: freshroot's load() against systemd-tmpfiles 262 in the same run.

systemd-tmpfiles has no parse-only mode, so the reference is its whole ``--dry-run --create``
into an empty scratch root (parse, then a dry walk of the create phase): an upper bound of what
parsing costs it. freshroot's side is a fresh interpreter that imports the loader and runs
load() on the same input, so start-up is counted on both sides. Two inputs: a generated
10,000-line file (d, f, L, z, w lines with users and groups, as the issue's apply benchmark
uses), and this machine's /usr/lib/tmpfiles.d with --boot (start-up bound). Runs alternate;
medians are compared.

    python bench/tmpfiles_parse.py [--reps N] [--lines N] [--reference PATH]
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

HERE = Path(__file__).resolve().parent.parent
SRC = HERE / "src"
DEFAULT_REFERENCE = Path(os.environ.get("FRESHROOT_ORACLES", HERE / ".cache" / "oracles")) / "systemd-tmpfiles-new"
ACCOUNTS = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:100::/home/bob:/bin/sh\n"
GROUP = "root:x:0:\nusers:x:100:bob\nalice:x:1000:\n"


def generated(lines: int) -> str:
    out = []
    for i in range(lines):
        match i % 5:
            case 0:
                out.append(f"d /srv/d{i} 0755 alice users -")
            case 1:
                out.append(f"f /srv/d{i - 1}/f{i} 0644 bob - - hello world {i}")
            case 2:
                out.append(f"L /srv/l{i} - - - - /srv/d{i - 2}")
            case 3:
                out.append(f"z /srv/d{i - 3} 0750 alice users")
            case _:
                out.append(f"w /srv/d{i - 4}/f{i - 3} - - - - more {i}")
    return "\n".join(out) + "\n"


def make_root(path: Path) -> Path:
    (path / "etc").mkdir(parents=True)
    (path / "etc/passwd").write_text(ACCOUNTS)
    (path / "etc/group").write_text(GROUP)
    return path


def time_run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def compare(name: str, ref_argv: list[str], ours_argv: list[str], reps: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    ref_times, our_times = [], []
    for _ in range(reps):
        ref_times.append(time_run(ref_argv, env))
        our_times.append(time_run(ours_argv, env))
    ref, ours = statistics.median(ref_times), statistics.median(our_times)
    print(f"{name}: systemd-tmpfiles {ref * 1000:.1f} ms, freshroot load() {ours * 1000:.1f} ms, "
          f"ratio {ours / ref:.2f}x (median of {reps})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    args = parser.parse_args()
    loader = ("import sys; from freshroot.tmpfiles.load import LoadOptions, load; "
              "load(LoadOptions(configs=tuple(sys.argv[3:]), root=sys.argv[1], boot=sys.argv[2] == 'boot'), "
              "lambda m: None)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        conf = work / "big.conf"
        conf.write_text(generated(args.lines))
        root = make_root(work / "root")
        compare(f"{args.lines} generated lines",
                [str(args.reference), f"--root={root}", "--dry-run", "--create", str(conf)],
                [sys.executable, "-c", loader, str(root), "-", str(conf)], args.reps)
        if Path("/usr/lib/tmpfiles.d").is_dir():
            machine = make_root(work / "machine")
            for f in ("passwd", "group"):
                shutil.copy(f"/etc/{f}", machine / "etc" / f)
            shutil.copytree("/usr/lib/tmpfiles.d", machine / "usr/lib/tmpfiles.d", symlinks=True)
            compare("this machine's /usr/lib/tmpfiles.d (--boot)",
                    [str(args.reference), f"--root={machine}", "--dry-run", "--create", "--boot"],
                    [sys.executable, "-c", loader, str(machine), "boot"], args.reps)


if __name__ == "__main__":
    main()
