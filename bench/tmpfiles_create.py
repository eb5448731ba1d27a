"""Benchmark: freshroot-tmpfiles --create against systemd-tmpfiles (newest) in the same run.

1. A generated 10,000-line configuration (d, f with content, L, z, w, with users and groups)
   applied to an empty root. Target: median wall time at most 1.5x systemd's.
2. This machine's /usr/lib/tmpfiles.d with --create --boot into a scratch root (start-up
   bound: the ratio is reported, not held to a target).

Both tools run as separate processes (freshroot through ``python -c``, as the command would
be started), several repetitions each, alternating, median wall time compared; the CPU time
(user + system of the process, from getrusage) is reported beside it. The roots live on
tmpfs (/dev/shm, or --dir): where a wiped root lives, and where the disk's noise (on this
machine's ext4 a mkdir costs 0.1 to 0.5 ms, varying run to run) does not drown what the
tools themselves cost. Every
repetition checks both exit statuses (the run stops with the tool's messages when one is not
0), and the first repetition of each scenario compares the two resulting trees entry by entry
with the differential harness's snapshot (tests/tmpfiles/harness.py): a difference stops the
run too, since timing two tools that do different work means nothing. The host scenario's
root gets this machine's /etc/passwd and /etc/group, so the owners its lines name resolve.

    PYTHONPATH=src python bench/tmpfiles_create.py [--reps 7] [--lines 10000] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import os
import resource
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


class BenchFailure(Exception):  # noqa: N818 - what the run stops with, printed as is
    pass


def fresh_root(base: Path, name: str, *, host_accounts: bool = False) -> Path:
    root = base / name
    if root.exists():
        shutil.rmtree(root)
    (root / "etc").mkdir(parents=True)
    if host_accounts:
        shutil.copyfile("/etc/passwd", root / "etc" / "passwd")
        shutil.copyfile("/etc/group", root / "etc" / "group")
    else:
        (root / "etc" / "passwd").write_text(PASSWD)
        (root / "etc" / "group").write_text(GROUP)
    (root / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root


def _checked(tool: str, proc: subprocess.CompletedProcess[bytes]) -> None:
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-20:]
        raise BenchFailure(f"{tool} exited with status {proc.returncode}:\n  " + "\n  ".join(tail))


def _timed(argv: list[str], env: dict[str, str] | None = None,
           ) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Wall time and CPU time (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, check=False, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def run_systemd(root: Path, args: list[str]) -> tuple[float, float]:
    wall, cpu, proc = _timed([str(ORACLES / "systemd-tmpfiles-new"), f"--root={root}", *args])
    _checked("systemd-tmpfiles", proc)
    return wall, cpu


def run_freshroot(root: Path, args: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    code = "import sys; from freshroot.tmpfiles.commands import main; sys.exit(main())"
    wall, cpu, proc = _timed([sys.executable, "-c", code, f"--root={root}", *args], env)
    _checked("freshroot-tmpfiles", proc)
    return wall, cpu


def same_trees(name: str, theirs: Path, ours: Path) -> None:
    """The two roots hold the same entries (type, mode, owner, content, target, xattrs, flags)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.tmpfiles.harness import diff_trees, snapshot

    mine = snapshot(ours)
    problems = diff_trees(snapshot(theirs), mine, ("systemd", "freshroot"))
    if problems:
        shown = "\n  ".join(problems[:30]) + (f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else "")
        raise BenchFailure(f"{name}: the trees differ, the timings would compare different work:\n  {shown}")
    print(f"{name}: both tools left the same tree ({len(mine)} entries)")


def compare(name: str, args: list[str], reps: int, base: Path, *, host_accounts: bool = False) -> float:
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for rep in range(reps):
        s_root, f_root = fresh_root(base, "s", host_accounts=host_accounts), fresh_root(base, "f",
                                                                                     host_accounts=host_accounts)
        theirs.append(run_systemd(s_root, args))
        ours.append(run_freshroot(f_root, args))
        if rep == 0:
            same_trees(name, s_root, f_root)
    wall = [statistics.median(t[0] for t in side) for side in (theirs, ours)]
    cpu = [statistics.median(t[1] for t in side) for side in (theirs, ours)]
    ratio = wall[1] / wall[0]
    print(f"{name}: systemd-tmpfiles {wall[0] * 1000:.1f} ms, freshroot-tmpfiles {wall[1] * 1000:.1f} ms "
          f"(median of {reps}); ratio {ratio:.2f}x; CPU {cpu[0] * 1000:.0f} ms against {cpu[1] * 1000:.0f} ms, "
          f"{cpu[1] / cpu[0]:.2f}x")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--target", type=float, default=1.5)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the scratch roots are made (default: /dev/shm, a tmpfs)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fr-bench-", dir=opts.dir) as tmp:
        base = Path(tmp)
        conf = base / "generated.conf"
        conf.write_text(generate(opts.lines))
        try:
            ratio = compare(f"{opts.lines}-line configuration", ["--create", str(conf)], opts.reps, base)
            host = sorted(str(p) for p in Path("/usr/lib/tmpfiles.d").glob("*.conf"))
            compare(f"/usr/lib/tmpfiles.d ({len(host)} files) --create --boot", ["--create", "--boot", *host],
                    opts.reps, base, host_accounts=True)
        except BenchFailure as e:
            print(f"benchmark stopped: {e}", file=sys.stderr)
            return 2
    if ratio > opts.target:
        print(f"over target: {ratio:.2f}x > {opts.target}x")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
