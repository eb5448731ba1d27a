"""A fleet plan and apply on 16 hosts: ``freshroot deploy`` against pyinfra doing the same by
hand (upload the declaration with files.put, run ``freshroot plan``/``apply`` with
server.shell), in the same run, as ratios.

The hosts are real OpenSSH servers, each in its own network and mount namespace with its own
root and /persist (tests/deploy/sshlab.py); both sides use pyinfra's API in one process with
gevent's patching, as pyinfra's CLI does. Each apply repetition changes the declaration (a
new /etc/motd text), so both sides have the same work to do. Needs root, sshd and pyinfra.

    sudo .venv/bin/python bench/fleet.py [--hosts 16] [--reps 3]

Target (issue 17): freshroot deploy at most 1.3x pyinfra's upload + command.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

COMMON = '[persist."/persist"]\ndirectories = ["/var/lib/app"]\n\n[etc."motd"]\ntext = "{motd}\\n"\nforce = true\n'
REF_STAGE = "/var/lib/freshroot/reference"


def _reference(fleet_path: str, action: str) -> float:
    """pyinfra by hand: files.put of each part, then the freshroot command."""
    from pyinfra.api.config import Config
    from pyinfra.api.connect import connect_all, disconnect_all
    from pyinfra.api.inventory import Inventory
    from pyinfra.api.operation import add_op
    from pyinfra.api.operations import run_ops
    from pyinfra.api.state import State
    from pyinfra.operations import files, server

    from freshroot.deploy.engine import _inventory_data
    from freshroot.deploy.fleet import load

    hosts = load(fleet_path).hosts
    start = time.perf_counter()
    names = [_inventory_data(h) for h in hosts]
    state = State(inventory=Inventory((names, {})), config=Config())  # type: ignore[no-untyped-call]
    by_name = {h.name: h for h in hosts}
    connect_all(state)
    for pyhost in list(state.inventory.get_active_hosts()):
        host = by_name[pyhost.name]
        stage = f"{host.root.rstrip('/')}{REF_STAGE}"
        for i, part in enumerate(host.parts):
            add_op(state, files.put, src=part, dest=f"{stage}/{i:02d}-{Path(part).name}", mode="600",
                   create_remote_dir=True, host=pyhost, name=f"upload part {i}")
        add_op(state, server.shell, commands=[f"{host.freshroot} {action} --json --root {host.root} --config {stage}"],
               host=pyhost, name=f"freshroot {action}")
    run_ops(state)
    failed = len(state.failed_hosts)
    disconnect_all(state)
    elapsed = time.perf_counter() - start
    if failed:
        raise SystemExit(f"reference {action}: {failed} host(s) failed")
    return elapsed


def _ours(fleet_path: str, action: str) -> float:
    from freshroot.deploy import engine
    from freshroot.deploy.fleet import load

    start = time.perf_counter()
    fleet = load(fleet_path)
    report = engine.run_batches(fleet.hosts, action, fleet=fleet_path)
    elapsed = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"freshroot deploy {action}: failed on {report.failed}: "
                         f"{[h.error for h in report.hosts if not h.ok][:2]}")
    return elapsed


def inner(fleet_path: str, common: str, reps: int) -> dict[str, object]:
    """In the lab's network namespace: the measurements."""
    from freshroot.deploy.engine import patch_gevent

    patch_gevent()
    times: dict[str, list[float]] = {"ours plan": [], "pyinfra plan": [], "ours apply": [], "pyinfra apply": []}
    for rep in range(reps):
        for action in ("plan", "apply"):
            # Alternate who goes first; each apply gets a new declaration, so both have work.
            order = [("ours", _ours), ("pyinfra", _reference)]
            if rep % 2:
                order.reverse()
            for who, fn in order:
                if action == "apply":
                    Path(common).write_text(COMMON.format(motd=f"{who} {rep}"))
                times[f"{who} {action}"].append(fn(fleet_path, action))
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"medians": medians, "plan ratio": medians["ours plan"] / medians["pyinfra plan"],
            "apply ratio": medians["ours apply"] / medians["pyinfra apply"], "runs": times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--inner", nargs=2, metavar=("FLEET", "COMMON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        sys.stdout.write(json.dumps(inner(args.inner[0], args.inner[1], args.reps)) + "\n")
        return 0
    from tests.deploy.sshlab import Lab, available

    why = available()
    if why:
        sys.stderr.write(f"bench/fleet.py: {why}\n")
        return 1
    base = Path(tempfile.mkdtemp(prefix="freshroot-fleet-bench-"))
    lab = Lab(base)
    try:
        lab.start(args.hosts)
        common = base / "common.toml"
        common.write_text(COMMON.format(motd="start"))
        fleet = base / "fleet.toml"
        fleet.write_text(lab.fleet_toml([str(common)]))
        result = subprocess.run(lab.controller_argv([sys.executable, __file__, "--reps", str(args.reps),
                                                     "--inner", str(fleet), str(common)]),
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            return 1
        data = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    medians = data["medians"]
    print(f"{args.hosts} hosts, median of {args.reps}:")
    for action in ("plan", "apply"):
        print(f"  {action}: freshroot deploy {medians[f'ours {action}']:.2f} s, pyinfra upload + command "
              f"{medians[f'pyinfra {action}']:.2f} s: {data[f'{action} ratio']:.2f}x (target <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
