"""--clean over a large generated tree: freshroot against systemd-tmpfiles (newest) in one run.

    .venv/bin/python bench/tmpfiles_clean.py [--entries 1000000] [--reps 3] [--globs 20]
        [--dir /var/tmp] [--also-src /path/to/other/freshroot/src ...]

The tree is directories of 1,000 files each, every other file older than the age. It is built
once as a template; each run gets a fresh copy made with hard links (cp -al), so both tools
see identical trees, and the copy is synced before the clock starts (the writeback of the copy
is not billed to the tool that runs next). The age-by is "am" because hard-linking changes
ctime. Reported: median wall time, CPU time (user + system, the workers' included: less
disturbed by other load than wall time; the user and system parts beside it) and peak RSS of
each tool, and the ratios (targets: at most 1.3x time, 2x memory), for freshroot as it runs
(its workers on every CPU, at most 4) and in one process (as on a one-CPU machine). Each
freshroot's sources are byte-compiled first, as an installed package's are: with
PYTHONDONTWRITEBYTECODE set (as in the test environment) and no __pycache__, every run would
otherwise compile them again, about 0.06 s of CPU a run. The tools take turns within each repetition, in an
order rotated from one repetition to the next. The first repetition checks that all left the
same entries. The load average is printed before and after: on a shared machine, compare
figures measured at a low load.
Figures measured with it, as ratios, and where freshroot's time per entry goes:
docs/tmpfiles-clean.md, Performance (2026-12-07: one process 1.22x, 1.28x and 1.27x CPU,
medians of five repetitions on a shared machine; single repetitions 1.11x to 1.38x).
With --globs N, the configuration also has N glob lines (x exclusions that match nothing), to
show the cost does not grow as entries x globs. With --also-src DIR, freshroot from the sources
in DIR (say, the main branch's, for a before/after figure) is timed in the same run too.
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


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, float]:
    """Wall seconds, CPU seconds (user + system, with the workers it waited for), peak RSS
    (KiB; the largest of the process and its workers) and user seconds of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed: {err}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, usage.ru_utime


def byte_compile(env: dict[str, str]) -> None:
    """Compile the freshroot package that ``env`` imports into its __pycache__, as installing
    it does; a warning when that cannot be done (then start-up includes compiling)."""
    where = subprocess.run([sys.executable, "-c", "import freshroot; print(freshroot.__path__[0])"],
                           capture_output=True, text=True, env=env, check=True).stdout.strip()
    if subprocess.run([sys.executable, "-m", "compileall", "-q", where], stdout=subprocess.DEVNULL,
                      env=env, check=False).returncode != 0:
        print(f"warning: could not byte-compile {where}: its start-up includes compiling", flush=True)


_DIGEST = """
import hashlib, os, sys
paths = sorted(os.path.relpath(os.path.join(d, n), sys.argv[1]) for d, ds, fs in os.walk(sys.argv[1]) for n in ds + fs)
print(len(paths), hashlib.sha256("\\n".join(paths).encode("utf-8", "surrogateescape")).hexdigest())
"""


def survivors(root: Path) -> str:
    """How many paths are left below the root, and a digest of them. Worked out in a child
    process: a list of half a million paths here would raise this process's memory, which
    every tool started after it inherits in its peak RSS (the pages a fork copies count)."""
    return subprocess.run([sys.executable, "-c", _DIGEST, str(root)], capture_output=True, text=True,
                          check=True).stdout.strip()


# name -> (command, extra environment). The second freshroot run is the one-process walk, as
# on a machine with one CPU (freshroot.tmpfiles.cleanworkers).
TOOLS: dict[str, tuple[list[str], dict[str, str]]] = {
    "systemd-tmpfiles": ([str(ORACLE / "systemd-tmpfiles-new")], {}),
    "freshroot": (OURS, {}),
    "freshroot, one process": (OURS, {"FRESHROOT_CLEAN_WORKERS": "1"}),
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--globs", type=int, default=0)
    ap.add_argument("--dir", help="where the trees are made (default: $TMPDIR or /tmp)")
    ap.add_argument("--also-src", action="append", default=[], metavar="DIR",
                    help="also time freshroot from the sources in DIR (its src directory)")
    args = ap.parse_args()
    tools = dict(TOOLS)
    for src in args.also_src:
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(src).resolve()), os.environ.get("PYTHONPATH")]))}
        tools[f"freshroot from {src}"] = (OURS, env)
        tools[f"freshroot from {src}, one process"] = (OURS, {**env, "FRESHROOT_CLEAN_WORKERS": "1"})
    print(f"load average {load()}", flush=True)
    for argv, extra in tools.values():
        if argv == OURS:
            byte_compile({**os.environ, **extra})
    with tempfile.TemporaryDirectory(prefix="freshroot-bench-", dir=args.dir) as tmp:
        base = Path(tmp)
        print(f"building a template tree of {args.entries:,} files in {base} ...", flush=True)
        build_template(base / "template", args.entries)
        conf = base / "clean.conf"
        lines = ["d /t - - - am:1h"] + [f"x /t/*/nomatch{i}-*" for i in range(args.globs)]
        conf.write_text("\n".join(lines) + "\n")
        results: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in tools}
        left: dict[str, str] = {}
        names = list(tools)
        for rep in range(args.reps):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                argv, extra = tools[name]
                root = base / "work"
                shutil.rmtree(root, ignore_errors=True)
                subprocess.run(["cp", "-al", str(base / "template"), str(root)], check=True)
                os.sync()
                results[name].append(timed([*argv, f"--root={root}", "--clean", str(conf)], {**os.environ, **extra}))
                wall, cpu, rss, user = results[name][-1]
                print(f"  rep {rep + 1} {name}: {wall:.2f} s, CPU {cpu:.2f} s (user {user:.2f}, system "
                      f"{cpu - user:.2f}), {rss} KiB", flush=True)
                if rep == 0:
                    left[name] = survivors(root)
        # Timing tools that did different work would mean nothing.
        for name, digest in left.items():
            if digest != left["systemd-tmpfiles"]:
                raise SystemExit(f"{name} left {digest}, systemd-tmpfiles {left['systemd-tmpfiles']} "
                                 "(count, digest): the runs are not comparable")
        count = left["freshroot"].split()[0]
        print(f"entries {args.entries:,}  globs {args.globs}  (every run left the same {int(count):,} entries)")
        print(f"load average {load()}")
        t_ref = statistics.median(r[0] for r in results["systemd-tmpfiles"])
        c_ref = statistics.median(r[1] for r in results["systemd-tmpfiles"])
        m_ref = statistics.median(r[2] for r in results["systemd-tmpfiles"])
        print(f"systemd-tmpfiles: {t_ref:.2f} s, CPU {c_ref:.2f} s, {m_ref} KiB")
        for name in names[1:]:
            t_our = statistics.median(r[0] for r in results[name])
            c_our = statistics.median(r[1] for r in results[name])
            m_our = statistics.median(r[2] for r in results[name])
            # The CPU ratio of each repetition (the tools ran one after the other in it): its
            # spread says how much the load moved the figures.
            each = " ".join(f"{ours[1] / ref[1]:.2f}" for ours, ref in zip(results[name], results["systemd-tmpfiles"],
                                                                              strict=True))
            print(f"{name}: {t_our:.2f} s, CPU {c_our:.2f} s, {m_our} KiB; ratio time {t_our / t_ref:.2f}x "
                  f"(target <= 1.3x), CPU {c_our / c_ref:.2f}x (each repetition: {each}), memory "
                  f"{m_our / m_ref:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
