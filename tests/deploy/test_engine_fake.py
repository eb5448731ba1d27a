"""The deploy engine over pyinfra's @fake connector: per-host reports, a host that fails,
--fail-percent (pyinfra's own check, and the rolling batches of --parallel), and a host that
does not answer (a closed port on 127.0.0.1: a real connection refused)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyinfra")

from freshroot.deploy import engine
from freshroot.deploy.fleet import load
from freshroot.deploy.report import CHANGED, FAILED, NO_CHANGE, NOT_RUN, UNREACHABLE
from freshroot.errors import ConfigError, UsageError

APPLIED = {"ok": True, "counts": {"changed": 2, "unchanged": 7, "skipped": 0, "failed": 0},
           "generation": {"number": 4, "new": True}}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed once the socket is: connect is refused


def _fleet(tmp_path: Path, hosts: dict[str, str], extra: str = "") -> str:
    (tmp_path / "common.toml").write_text('[etc."motd"]\ntext = "hi\\n"\n')
    text = '[fleet]\nparts = ["common.toml"]\nconnect_timeout = 3\n' + extra
    for name, address in hosts.items():
        text += f'\n[hosts.{name}]\naddress = "{address}"\ntags = ["{"odd" if name[-1] in "13579" else "even"}"]\n'
    (tmp_path / "fleet.toml").write_text(text)
    return str(tmp_path / "fleet.toml")


def _data(failing: set[str], names: list[str]) -> dict[str, dict[str, Any]]:
    gens = {"current": 4, "generations": [{"number": 4, "current": True, "digest": "x", "confirm": None}]}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        apply: Any = {"success": False, "stderr": "apply: step etc failed"} if name in failing else json.dumps(APPLIED)
        out[name] = {"fake_delay": 0, "fake_delay_jitter": 0,
                     "fake_responses": {"apply --json": apply, "generations --json": json.dumps(gens)}}
    return out


def test_reports_one_entry_per_host_and_the_failed_ones(tmp_path):
    names = [f"h{i}" for i in range(1, 5)]
    fleet = load(_fleet(tmp_path, {n: f"@fake/{n}" for n in names}))
    report = engine.run_batches(fleet.hosts, "apply", fleet=fleet.path, extra_data=_data({"h2"}, names))
    by = {h.name: h for h in report.hosts}
    assert [h.status for h in report.hosts] == [CHANGED, FAILED, CHANGED, CHANGED]
    assert by["h1"].ok
    assert by["h1"].reachable
    assert by["h1"].generation == 4
    assert by["h1"].apply == {k: APPLIED[k] for k in ("ok", "counts", "generation")}
    assert "step etc failed" in (by["h2"].error or "")
    assert report.failed == ["h2"]
    doc = report.to_json()
    assert doc["rerun"].endswith("--on h2")
    assert set(doc["hosts"]["h1"]) >= {"reachable", "ok", "plan", "apply", "generation", "confirmed", "rolled_back",
                                      "error", "duration"}


def test_fail_percent_stops_the_rolling_deploy(tmp_path):
    names = [f"h{i}" for i in range(1, 7)]
    fleet = load(_fleet(tmp_path, {n: f"@fake/{n}" for n in names}))
    report = engine.run_batches(fleet.hosts, "apply", fleet=fleet.path, parallel=2, fail_percent=20,
                                extra_data=_data({"h1", "h3"}, names))
    statuses = [h.status for h in report.hosts]
    # Batch 1: h1 fails (1 of 6 = 16%: on). Batch 2: h3 fails (33% > 20%): h5, h6 never start.
    assert statuses == [FAILED, CHANGED, FAILED, CHANGED, NOT_RUN, NOT_RUN]
    assert report.stopped
    assert "20%" in report.stopped
    assert report.failed == ["h1", "h3", "h5", "h6"]


def test_fail_percent_not_reached_runs_everything(tmp_path):
    names = [f"h{i}" for i in range(1, 5)]
    fleet = load(_fleet(tmp_path, {n: f"@fake/{n}" for n in names}))
    report = engine.run_batches(fleet.hosts, "apply", fleet=fleet.path, parallel=1, fail_percent=30,
                                extra_data=_data({"h4"}, names))
    assert [h.status for h in report.hosts] == [CHANGED, CHANGED, CHANGED, FAILED]
    assert report.stopped is None


def test_unreachable_host_is_reported_and_counts_for_fail_percent(tmp_path):
    names = ["h1", "h2", "h3"]
    hosts = {"h1": "@fake/h1", "h2": "127.0.0.1", "h3": "@fake/h3"}
    path = _fleet(tmp_path, hosts, extra=f"port = {_closed_port()}\nkey = \"nokey\"\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "nokey")], check=True)
    fleet = load(path)
    report = engine.run_batches(fleet.hosts, "apply", fleet=fleet.path, extra_data=_data(set(), names))
    by = {h.name: h for h in report.hosts}
    assert by["h2"].status == UNREACHABLE
    assert by["h2"].reachable is False
    assert by["h2"].error
    assert by["h1"].status == CHANGED
    assert by["h3"].status == CHANGED
    # Over the threshold: pyinfra stops right after connecting, nothing is applied anywhere.
    report = engine.run_batches(fleet.hosts, "apply", fleet=fleet.path, fail_percent=10,
                                extra_data=_data(set(), names))
    assert report.stopped
    assert [h.status for h in report.hosts] == [NOT_RUN, UNREACHABLE, NOT_RUN]


def test_second_apply_reports_no_change(tmp_path):
    names = ["h1", "h2"]
    fleet = load(_fleet(tmp_path, {n: f"@fake/{n}" for n in names}))
    from freshroot.pyinfra.common import declaration_digest, parts

    files = parts(fleet.hosts[0].parts)
    staged = "\n".join(f"{p.sha256}  {p.name}" for p in files)
    digest = declaration_digest(files)
    plan = {"ok": True, "counts": {"changed": 0, "unchanged": 9}, "steps": [],
            "generation": {"current": 4, "digest": digest, "planned": digest, "same": True, "confirm": None}}
    data = {n: {"fake_delay": 0, "fake_delay_jitter": 0,
                "fake_responses": {"sha256sum": staged, "plan --json": json.dumps(plan)}} for n in names}
    report = engine.run_batches(fleet.hosts, "apply", fleet=fleet.path, extra_data=data)
    assert [h.status for h in report.hosts] == [NO_CHANGE, NO_CHANGE]
    assert [h.generation for h in report.hosts] == [4, 4]


def test_fleet_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[fleet]\nparts = ["missing.toml"]\n\n[hosts.a]\nadress = "x"\n')
    with pytest.raises(ConfigError, match=r"fleet.toml:5"):
        load(str(path))
    path.write_text('[hosts.a]\naddress = "x"\n')
    with pytest.raises(ConfigError, match="no declaration"):
        load(str(path))
    fleet = load(_fleet(tmp_path, {"h1": "@fake/h1", "h2": "@fake/h2", "h3": "@fake/h3"}))
    assert [h.name for h in fleet.select(["@odd"])] == ["h1", "h3"]
    assert [h.name for h in fleet.select(["h2", "@odd"])] == ["h1", "h2", "h3"]
    with pytest.raises(UsageError, match="no such host"):
        fleet.select(["h9"])


def test_pyz_is_uploaded_and_run(tmp_path):
    fleet = load(_fleet(tmp_path, {"h1": "@fake/h1", "h2": "@fake/h2"},
                        extra='pyz = "/root/freshroot.pyz"\n'))
    assert [h.freshroot for h in fleet.hosts] == ["python3 -I /root/freshroot.pyz"] * 2
    assert {h.pyz for h in fleet.hosts} == {"/root/freshroot.pyz"}
    # An explicit freshroot command wins; a relative pyz is refused at its line.
    (tmp_path / "fleet.toml").write_text('[fleet]\nparts = ["common.toml"]\npyz = "/p.pyz"\nfreshroot = "/opt/fr"\n'
                                         '[hosts.a]\n')
    assert load(str(tmp_path / "fleet.toml")).hosts[0].freshroot == "/opt/fr"
    (tmp_path / "fleet.toml").write_text('[fleet]\nparts = ["common.toml"]\n[hosts.a]\npyz = "f.pyz"\n')
    with pytest.raises(ConfigError, match=r"fleet.toml:4: .*absolute"):
        load(str(tmp_path / "fleet.toml"))
    # What deploy uploads: a zipapp of this freshroot, removed after the run.
    shipped = engine._ship(fleet.hosts)
    assert shipped is not None
    built = Path(shipped.name) / "freshroot.pyz"
    version = subprocess.run(["python3", "-I", str(built), "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0, version.stderr
    shipped.cleanup()
    assert not built.exists()
    assert engine._ship(load(_fleet(tmp_path, {"h1": "@fake/h1"})).hosts) is None
