"""Activation: freshroot's own overhead per snippet, against running the same bash processes directly.

A plan of 50 snippets plus the builtins (users, etc, binsh, usrbinenv, specialfs) is applied
to a scratch root. The reference is the same 50 ``bash -c`` processes started one after the
other from Python with subprocess.run. freshroot's overhead per snippet is

    (time of the 50 snippet steps in an apply - time of the 50 plain processes) / 50

(lock, journal rewrite after every step, strict prelude, output capture, ordering). Target:
under 5 ms. Medians of several repetitions; run as ``python -m bench.activation``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from freshroot.plan.handlers import run_plan
from freshroot.plan.result import Status

SNIPPETS = 50
REPEAT = 7
WORK = 'echo "step $FRESHROOT_SNIPPET" > /dev/null; x=$((1 + 2))'


def declaration(directory: Path) -> str:
    parts = ['[users.alice]\n[users.svc]\nsystem = true\n[groups.wheel]\nmembers = ["alice"]\n']
    parts += [f'[etc."bench/file{i}.conf"]\ntext = "value = {i}\\n"\n' for i in range(10)]
    for i in range(SNIPPETS):
        deps = f'deps = ["s{i - 1:02d}"]\n' if i % 5 else 'deps = ["etc"]\n'
        parts.append(f"[activation.s{i:02d}]\ntext = '{WORK}'\n{deps}")
    path = directory / "decl.toml"
    path.write_text("\n".join(parts))
    return str(path)


def make_root(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "bin").mkdir()


def plain(root: Path) -> float:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FRESHROOT_SNIPPET": "x"}
    start = time.perf_counter()
    for _ in range(SNIPPETS):
        subprocess.run(["bash", "-c", WORK], env=env, cwd=root, check=True)
    return time.perf_counter() - start


def main() -> None:
    plain_times, snippet_times, total_times, first_times = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="freshroot-bench-") as tmp:
        decl = declaration(Path(tmp))
        for rep in range(REPEAT):
            root = Path(tmp) / f"root{rep}"
            make_root(root)
            start = time.perf_counter()
            report = run_plan(str(root), [decl], dry_run=False)
            first_times.append(time.perf_counter() - start)
            assert report.ok, report.render()
            start = time.perf_counter()
            report = run_plan(str(root), [decl], dry_run=False)  # builtins now unchanged
            total_times.append(time.perf_counter() - start)
            assert report.ok
            assert sum(r.status is Status.CHANGED for r in report.results) == SNIPPETS
            snippet_times.append(sum(r.duration for r in report.results if r.name.startswith("s")))
            plain_times.append(plain(root))
    base = statistics.median(plain_times)
    ours = statistics.median(snippet_times)
    overhead_ms = (statistics.median(total_times) - base) / SNIPPETS * 1000
    step_ms = (ours - base) / SNIPPETS * 1000
    print(f"50 plain bash -c processes:             {base * 1000:8.1f} ms")
    print(f"50 snippet steps inside an apply:       {ours * 1000:8.1f} ms  ({ours / base:.2f}x)")
    print(f"whole apply (50 snippets + builtins):   {statistics.median(total_times) * 1000:8.1f} ms "
          f"(first apply, builtins changing: {statistics.median(first_times) * 1000:.1f} ms)")
    print(f"overhead per snippet, step only:        {step_ms:8.2f} ms")
    print(f"overhead per snippet, whole apply:      {overhead_ms:8.2f} ms  (target < 5 ms)")


if __name__ == "__main__":
    main()
