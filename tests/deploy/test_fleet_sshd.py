"""freshroot deploy against real OpenSSH servers, each in its own network and mount namespace
with its own root and /persist (tests/deploy/sshlab.py): plan, apply, a second apply with no
change, a host whose sshd dies mid-run (unreachable; the others done; --fail-percent holds),
and a confirm that cannot arrive, so the host's timer rolls back by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyinfra")

from tests.deploy.sshlab import SRC, Lab, available

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=str(available())),
              pytest.mark.xdist_group("fleet-sshd")]

COMMON = '[persist."/persist"]\ndirectories = ["/var/lib/app"]\n\n[etc."motd"]\ntext = "{motd}\\n"\nforce = true\n'
SLOW = '[activation.slow]\ntext = "touch \\"$FRESHROOT_ROOT/marker\\"; sleep 8"\n'


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("fleet"))
    try:
        yield lab.start(4)
    finally:
        lab.stop()


def _deploy(lab: Lab, *args: str, background: bool = False) -> Any:
    argv = lab.controller_argv([sys.executable, "-m", "freshroot", "deploy", *args])
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if background:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _write(lab: Lab, motd: str, per_host: dict[str, dict[str, str]] | None = None,
           extra: dict[str, str] | None = None) -> str:
    (lab.base / "common.toml").write_text(COMMON.format(motd=motd))
    for host in lab.hosts:
        (lab.base / f"{host.name}.toml").write_text((extra or {}).get(host.name, ""))
    hosts = {h.name: {"parts": f'["{lab.base}/{h.name}.toml"]', **(per_host or {}).get(h.name, {})}
             for h in lab.hosts}
    fleet = lab.base / "fleet.toml"
    fleet.write_text(lab.fleet_toml([str(lab.base / "common.toml")], hosts))
    return str(fleet)


def _current(lab: Lab, name: str) -> int:
    host = next(h for h in lab.hosts if h.name == name)
    return int((host.root / "persist/.freshroot/generations/current").read_text())


def test_fleet(lab: Lab) -> None:
    fleet = _write(lab, "one")
    out = lab.base / "report.json"
    names = [h.name for h in lab.hosts]

    # plan: every host has something to do; nothing is changed on any of them.
    result = _deploy(lab, "plan", "--fleet", fleet, "--report", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(out)
    assert [report["hosts"][n]["status"] for n in names] == ["changed"] * 4
    assert all(report["hosts"][n]["plan"]["counts"]["changed"] > 0 for n in names)
    assert not any((h.root / "etc/motd").exists() for h in lab.hosts)

    # apply, then apply again: "no change" everywhere, same generation.
    result = _deploy(lab, "apply", "--fleet", fleet, "--report", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(out)
    for n in names:
        assert report["hosts"][n]["status"] == "changed"
        assert report["hosts"][n]["generation"] == 1
        assert report["hosts"][n]["reachable"] is True
    for h in lab.hosts:
        assert (h.root / "etc/motd").read_text() == "one\n"
        assert (h.root / "persist/.freshroot/generations/1/meta.json").exists()
    result = _deploy(lab, "apply", "--fleet", fleet, "--report", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(out)
    assert [report["hosts"][n]["status"] for n in names] == ["no change"] * 4
    assert [report["hosts"][n]["generation"] for n in names] == [1] * 4

    # h3's sshd dies while its apply runs: h3 unreachable, the others applied, 25% < 30%.
    fleet = _write(lab, "two", extra={"h3": SLOW})
    marker = lab.hosts[2].root / "marker"
    proc = _deploy(lab, "apply", "--fleet", fleet, "--fail-percent", "30", "--report", str(out), background=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), proc.communicate()
        lab.hosts[2].kill_sshd()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stdout + stderr
    report = _report(out)
    assert report["hosts"]["h3"]["status"] == "unreachable"
    assert report["hosts"]["h3"]["reachable"] is False
    assert report["hosts"]["h3"]["error"]
    for n in ("h1", "h2", "h4"):
        assert report["hosts"][n]["status"] == "changed", report["hosts"][n]
        assert report["hosts"][n]["generation"] == 2
    assert report["failed"] == ["h3"]
    assert report["stopped"] is None
    assert "--on h3" in report["rerun"]

    # h1 applies with a confirm timeout and is cut off: the confirm cannot arrive, the timer on
    # h1 rolls back to generation 2 by itself; once h1 answers again, deploy says so.
    h1 = lab.hosts[0]
    fleet = _write(lab, "three", per_host={"h1": {"confirm_timeout": "3"}}, extra={"h1": ""})
    result = _deploy(lab, "apply", "--fleet", fleet, "--on", "h1", "--report", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(out)
    assert report["hosts"]["h1"]["generation"] == 3
    assert report["hosts"]["h1"]["confirmed"] == "pending"
    assert (h1.root / "etc/motd").read_text() == "three\n"
    h1.link(up=False)
    try:
        result = _deploy(lab, "confirm", "--fleet", fleet, "--on", "h1", "--report", str(out))
        assert result.returncode == 1
        assert _report(out)["hosts"]["h1"]["status"] == "unreachable"
        deadline = time.monotonic() + 60
        while _current(lab, "h1") != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        h1.link(up=True)
    assert _current(lab, "h1") == 2
    assert (h1.root / "etc/motd").read_text() == "two\n"
    result = _deploy(lab, "confirm", "--fleet", fleet, "--on", "h1", "--report", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(out)
    assert report["hosts"]["h1"]["generation"] == 2
    assert report["hosts"]["h1"]["rolled_back"] is True
    meta = json.loads((h1.root / "persist/.freshroot/generations/3/meta.json").read_text())
    assert meta["confirm"]["state"] == "rolled-back"
