"""The declaration loader against bare tomllib on the same files.

The loader runs at boot (in the systemd generator), so what it adds on top of parsing TOML
matters: discovery below a root fd (four directories, conf.d listing, chase of each file),
the position scanner, and merging with positions. The reference is the least any loader does:
``tomllib.loads`` of each file's text, read with open(). Both sides read the same root: a main
file with 100 directories and 20 files (impermanence configurations have a median of about
96 entries), plus three drop-ins. Runs alternate; medians are compared. Also measured, in
fresh interpreters: the cost of importing the loader against importing tomllib alone.

    python bench/config_load.py [--reps N] [--entries N]
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

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from freshroot.config.load import load_declaration  # noqa: E402
from freshroot.fs.ops import open_root  # noqa: E402


def write_root(root: Path, entries: int) -> list[Path]:
    main = ['[persist."/persist"]', "hide-mounts = true", "directories = ["]
    for i in range(entries):
        if i % 4 == 0:
            main.append(f'  {{ path = "/var/lib/service-{i}", user = "root", group = "root", mode = "0700" }},')
        else:
            main.append(f'  "/var/lib/service-{i}",  # state of service {i}')
    main.append("]")
    main.append("files = [")
    main += [f'  "/etc/file-{i}",' for i in range(entries // 5)]
    main.append("]")
    main += ["", "[activation.hello]", "text = '''", "echo hello", "'''", 'deps = ["etc"]', ""]
    files = {"etc/freshroot/freshroot.toml": "\n".join(main)}
    for n, where in enumerate(("usr/lib", "run", "etc")):
        files[f"{where}/freshroot/conf.d/{n}0-extra.toml"] = (
            f'[persist."/persist"]\ndirectories = ["/srv/{n}", "/opt/{n}"]\n[users.u{n}]\nuid = {1000 + n}\n'
        )
    paths = []
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    return sorted(paths, key=lambda p: p.name)


def reference(paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb") as f:
            tomllib.loads(f.read().decode())


def median_of(fn: object, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_time(module: str, reps: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--entries", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-config-") as scratch:
        root = Path(scratch)
        paths = write_root(root, args.entries)
        root_fd = open_root(str(root))
        try:
            table = load_declaration(root_fd)
            n = len(table.get_table("persist").get_table("/persist").get_list("directories"))
            assert n == args.entries + 6, n
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(args.reps):  # alternate, so drift affects both sides alike
                start = time.perf_counter()
                load_declaration(root_fd)
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                reference(paths)
                theirs.append(time.perf_counter() - start)
        finally:
            os.close(root_fd)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"load_declaration: {a * 1e3:.2f} ms   tomllib alone: {b * 1e3:.2f} ms   ratio {a / b:.2f}x "
          f"({args.entries} entries + 3 drop-ins, median of {args.reps})")
    reps = max(5, args.reps // 20)
    ia, ib = import_time("freshroot.config.load", reps), import_time("tomllib", reps)
    print(f"cold start, import freshroot.config.load: {ia * 1e3:.1f} ms   import tomllib: {ib * 1e3:.1f} ms   "
          f"ratio {ia / ib:.2f}x (median of {reps} interpreters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
