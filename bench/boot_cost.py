"""freshroot's cost at boot, natively, against systemd's own tools in the same run (issue 19).

At every boot freshroot runs two processes: ``freshroot-generator`` (before anything else)
and ``freshroot apply --boot`` (freshroot-activate.service). Both are measured here as
systemd runs them, on the README's example with 100 more persisted directories, on a tmpfs:

- the generator with the cache ``freshroot install`` writes (the usual boot: the image's
  declaration is the installed one), and without it (the declaration changed since), against
  ``systemd-fstab-generator`` turning an fstab of the same 100 bind mounts into mount units;
- ``apply --boot`` on a root fresh from its image with the storage kept (what every boot
  after the first does: users again, every bind mount, the snippet, tmpfiles), and once more
  on that root (nothing left to do), against ``systemd-tmpfiles --create`` over the same root;
- the same boot without the compiled dataclass methods ``install`` keeps (freshroot.classcache);
- the floor: ``python3 -I -c pass``, what the interpreter costs before freshroot does anything.

Medians of ``--reps`` runs, interleaved, of CPU time (user + system, children included: the
snippet's bash and ssh-keygen count), which a machine busy with other work disturbs far less
than wall time; ratios are freshroot / reference. "inside boot()" is the activation's own
wall-time line (its steps, the plan and the imports it makes lazily). Needs root (bind
mounts, in a private mount namespace that ends with the run) and /usr/bin/python3, the
interpreter ``install`` renders the units with.

    sudo .venv/bin/python bench/boot_cost.py [--reps 9]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
PYTHON = "/usr/bin/python3"  # the generator script's interpreter, and so the units'
FSTAB_GENERATOR = next((p for p in ("/usr/lib/systemd/system-generators/systemd-fstab-generator",
                                    "/lib/systemd/system-generators/systemd-fstab-generator") if os.path.exists(p)), "")
TMPFILES = shutil.which("systemd-tmpfiles") or ""
DIRS = [f"/var/lib/svc{i:03d}" for i in range(100)]
GENERATOR = ("import sys; sys.path.insert(0, {src!r}); from freshroot.systemd.generator import main; "
             "sys.exit(main())")
# What install runs in the target: python3 -I -m freshroot.classcache.
CLASSCACHE = ("import sys; sys.path.insert(0, {src!r}); from freshroot.classcache import main; "
              "sys.exit(main())")
# As freshroot-activate.service runs it (freshroot.systemd.units.BOOT_COMMAND), with this checkout first.
BOOT = ("import sys; sys.path.insert(0, {src!r}); from freshroot.bootstart import main; "
        "sys.exit(main(sys.argv[1]))")
# As `python3 -m freshroot` runs it (runpy included), with -I and this checkout first.
FRESHROOT = ("import sys, runpy; sys.path.insert(0, {src!r}); sys.argv[0] = 'freshroot'; "
             "runpy.run_module('freshroot', run_name='__main__')")


def readme_example() -> str:
    """The first ```toml block of README.md, as tests/vm/test_readme_example.py reads it."""
    match = re.search(r"```toml\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert match is not None
    return match.group(1)


def make_image(top: Path) -> Path:
    """A root as an image ships it, with the README's declaration and 100 more directories,
    after ``freshroot install`` (storage directories, ids, the generator's cache)."""
    image = top / "image"
    for d in ("etc/freshroot/conf.d", "persist", "run", "var", "usr/bin", "bin", "root", "home"):
        (image / d).mkdir(parents=True)
    (image / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (image / "etc/group").write_text("root:x:0:\n")
    (image / "etc/shadow").write_text("root:*::0:99999:7:::\n")
    (image / "etc/gshadow").write_text("root:*::\n")
    (image / "etc/freshroot/freshroot.toml").write_text(readme_example())
    dirs = ", ".join(f'"{d}"' for d in DIRS)
    (image / "etc/freshroot/conf.d/50-bench.toml").write_text(f'[persist."/persist"]\ndirectories = [{dirs}]\n')
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run([PYTHON, "-I", "-c", FRESHROOT.format(src=str(SRC)), "install", "--root", str(image)],
                   env=env, check=True, capture_output=True)
    # What install runs in the target (chroot; this image has no python3 of its own):
    # python3 -I -m freshroot.classcache, for the interpreter the units run.
    subprocess.run([PYTHON, "-I", "-c", CLASSCACHE.format(src=str(SRC)), "--root", str(image)],
                   env=env, check=True, capture_output=True)
    return image


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """CPU time (user + system) of the process and its children, and its output. CPU time, not
    wall time: on a machine shared with other work the wall time mostly measures the others."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]}...: exit status {proc.returncode}\n{text}")
    return usage.ru_utime + usage.ru_stime, text


def generator_dirs(out: Path) -> list[str]:
    shutil.rmtree(out, ignore_errors=True)
    dirs = [out / n for n in ("normal", "early", "late")]
    for d in dirs:
        d.mkdir(parents=True)
    return [str(d) for d in dirs]


def bench_generators(top: Path, image: Path, reps: int) -> dict[str, list[float]]:
    uncached = top / "uncached"
    shutil.copytree(image / "etc", uncached / "etc", symlinks=True)  # the same declaration, no cache
    fstab = top / "fstab"
    fstab.write_text("".join(f"/persist{d} {d} none bind,x-gvfs-hide 0 0\n" for d in DIRS))
    code = GENERATOR.format(src=str(SRC))
    base = {"PATH": "/usr/bin:/bin", "SYSTEMD_IN_INITRD": "0"}
    runs = {
        "python3 -I -c pass (floor)": ([PYTHON, "-I", "-c", "pass"], base),
        "freshroot-generator, cached": ([PYTHON, "-I", "-c", code], {**base, "FRESHROOT_GENERATOR_ROOT": str(image)}),
        "freshroot-generator, built": ([PYTHON, "-I", "-c", code], {**base, "FRESHROOT_GENERATOR_ROOT": str(uncached)}),
        "systemd-fstab-generator (reference)": ([FSTAB_GENERATOR], {**base, "SYSTEMD_FSTAB": str(fstab),
                                                                  "SYSTEMD_PROC_CMDLINE": "quiet"}),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    trees: dict[str, list[str]] = {}
    for _ in range(reps):
        for name, (argv, env) in runs.items():
            dirs = generator_dirs(top / "gen")
            times[name].append(timed([*argv, *dirs] if "pass" not in name else argv, env)[0])
            trees[name] = sorted(str(p.relative_to(dirs[0])) for p in Path(dirs[0]).rglob("*"))
    cached, built = trees["freshroot-generator, cached"], trees["freshroot-generator, built"]
    assert cached == built, (cached, built)
    assert "freshroot-activate.service" in cached, cached
    assert len([t for t in trees["systemd-fstab-generator (reference)"] if t.endswith(".mount")]) >= len(DIRS)
    return times


def child(top: Path, reps: int) -> None:
    """In a private mount namespace: each repetition boots a fresh copy of the image with the
    storage kept (mounted on its /persist, as require-mount wants), then applies again, then
    runs systemd-tmpfiles over it."""
    image, storage = top / "image", top / "storage"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    code = BOOT.format(src=str(SRC))
    times: dict[str, list[float]] = {"boot": [], "again": [], "tmpfiles": [], "floor": [], "inside": [],
                                     "uncached": []}
    for rep in range(reps + 1):  # the first is the first boot (keys generated, storage seeded): not counted
        root = top / f"root{rep}"
        shutil.copytree(image, root, symlinks=True)
        subprocess.run(["mount", "--bind", str(storage), str(root / "persist")], check=True)
        boot, out = timed([PYTHON, "-I", "-c", code, str(root)], env)
        again, _ = timed([PYTHON, "-I", "-c", code, str(root)], env)
        ref, _ = timed([TMPFILES, "--create", f"--root={root}"], env)
        # The same boot without the class cache (freshroot.classcache): every class compiled.
        bare = top / f"bare{rep}"
        shutil.copytree(image, bare, symlinks=True)
        (bare / "usr/lib/freshroot/dataclass-methods.cache").unlink()
        subprocess.run(["mount", "--bind", str(storage), str(bare / "persist")], check=True)
        uncached, _ = timed([PYTHON, "-I", "-c", code, str(bare)], env)
        subprocess.run(["umount", "-R", str(bare / "persist")], check=False, capture_output=True)
        floor, _ = timed([PYTHON, "-I", "-c", "pass"], env)
        inside = re.search(r"activation done, \d+ steps in ([\d.]+) s", out)
        assert inside is not None, out
        if rep:
            for name, value in (("boot", boot), ("again", again), ("tmpfiles", ref), ("floor", floor),
                                ("inside", float(inside.group(1))), ("uncached", uncached)):
                times[name].append(value)
        subprocess.run(["umount", "-R", str(root)], check=False, capture_output=True)
        subprocess.run(["umount", "-R", str(root / "persist")], check=False, capture_output=True)
    sys.stdout.write(json.dumps(times) + "\n")


def bench_activation(top: Path, image: Path, reps: int) -> dict[str, list[float]]:
    storage = top / "storage"
    shutil.move(image / "persist", storage)  # install's storage, kept across boots
    (image / "persist").mkdir()
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, __file__, "--child",
                           str(top), "--reps", str(reps)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    times: dict[str, list[float]] = json.loads(proc.stdout.splitlines()[-1])
    return times


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.reps)
        return 0
    if os.geteuid() != 0 or not os.access(PYTHON, os.X_OK) or not FSTAB_GENERATOR or not TMPFILES:
        sys.stderr.write(f"needs root, {PYTHON}, systemd-fstab-generator and systemd-tmpfiles\n")
        return 1
    compileall.compile_dir(str(SRC / "freshroot"), quiet=1)  # an installed freshroot has its bytecode
    with tempfile.TemporaryDirectory(prefix="freshroot-bench-boot-", dir="/dev/shm") as tmp:
        top = Path(tmp)
        image = make_image(top)
        gen = bench_generators(top, image, args.reps)
        act = bench_activation(top, image, args.reps)
    load = os.getloadavg()[0]
    ref_gen = ms(gen["systemd-fstab-generator (reference)"])
    print(f"{args.reps} runs each, interleaved; load average {load:.1f} on {os.cpu_count()} CPUs; {PYTHON}; "
          f"README's example + {len(DIRS)} persisted directories, on a tmpfs")
    print("generator (100 bind mounts)            CPU median  x systemd-fstab-generator")
    for name, values in gen.items():
        print(f"  {name:40} {ms(values):7.1f} ms  {ms(values) / ref_gen:6.2f}x")
    ref_tmp = ms(act["tmpfiles"])
    print("activation                             CPU median  x systemd-tmpfiles --create")
    for name, label in (("floor", "python3 -I -c pass (floor)"),
                        ("boot", "apply --boot, root fresh from its image"),
                        ("inside", "  of which inside boot() (wall, its line)"),
                        ("uncached", "  the same without the class cache"),
                        ("again", "apply --boot again (nothing to do)"),
                        ("tmpfiles", "systemd-tmpfiles --create (reference)")):
        print(f"  {label:40} {ms(act[name]):7.1f} ms  {ms(act[name]) / ref_tmp:6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
