"""freshroot's pyinfra facts, tested as pyinfra tests its own (tests/facts/<Fact>/*.json there:
arguments in, the command string out; output lines in, the fact out), on the output of the
real freshroot commands and on what a host can print instead: nothing, not JSON, JSON of
another schema version, freshroot's JSON error document. The command strings also run
through sh against a scratch tree, so their shell is checked, not only their spelling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyinfra")

from pyinfra.api.facts import FactBase

from freshroot.output import JSON_VERSION
from freshroot.pyinfra import facts
from freshroot.pyinfra.common import STAGE
from tests.systemd.helpers import env

SHA = "a" * 64
# (fact class, command arguments, the command it must give)
COMMANDS: list[tuple[type[FactBase[Any]], dict[str, str], str]] = [
    (facts.FreshrootPlan, {"root": "/", "digest": "d" * 64},
     f"freshroot plan --json --root / --config {STAGE} 2>/dev/null; true"),
    (facts.FreshrootPlan, {"root": "/mnt/new root", "freshroot": "python3 -I /root/freshroot.pyz"},
     (f"python3 -I /root/freshroot.pyz plan --json --root '/mnt/new root' --config '/mnt/new root{STAGE}' "
      "2>/dev/null; true")),
    (facts.FreshrootStatus, {}, f"freshroot status --json --root / --config {STAGE} 2>/dev/null; true"),
    (facts.FreshrootStatus, {"root": "/mnt", "stage": "/srv/stage", "freshroot": "/opt/fr/bin/freshroot"},
     "/opt/fr/bin/freshroot status --json --root /mnt --config /mnt/srv/stage 2>/dev/null; true"),
    (facts.FreshrootGenerations, {"root": "/"},
     f"freshroot generations --json --root / --config {STAGE} 2>/dev/null; true"),
    (facts.FreshrootFacts, {}, "freshroot facts --json 2>/dev/null; true"),
    (facts.FreshrootFacts, {"freshroot": "python3 -I /root/freshroot.pyz"},
     "python3 -I /root/freshroot.pyz facts --json 2>/dev/null; true"),
    (facts.FreshrootStaged, {"root": "/srv/r"},
     f"cd /srv/r{STAGE} 2>/dev/null && for f in *.toml; do [ -f \"$f\" ] && sha256sum -- \"$f\"; done; true"),
    (facts.FreshrootInstalled, {"root": "/mnt"},
     ("cd /mnt 2>/dev/null && for f in etc/freshroot/conf.d/*.toml etc/freshroot/freshroot.toml "
      "usr/lib/systemd/system-generators/freshroot-generator; do [ -f \"$f\" ] && sha256sum -- \"$f\"; done; true")),
]
JSON_FACTS = (facts.FreshrootPlan, facts.FreshrootStatus, facts.FreshrootGenerations, facts.FreshrootFacts)


@pytest.mark.parametrize(("fact", "args", "expected"), COMMANDS,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(COMMANDS)])
def test_command(fact: type[FactBase[Any]], args: dict[str, str], expected: str) -> None:
    assert fact().command(**args) == expected


def test_no_fact_takes_the_declaration() -> None:
    # pyinfra logs fact arguments: paths, the root, a digest and the command, never the text.
    import inspect

    for fact in (*JSON_FACTS, facts.FreshrootStaged, facts.FreshrootInstalled):
        params = set(inspect.signature(fact().command).parameters)
        assert params <= {"root", "stage", "digest", "freshroot"}, (fact.__name__, params)


# --- process() on what freshroot really prints ----------------------------------------------


def _freshroot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "freshroot", *args], env=env(), capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a scratch root, its declaration) for the real commands."""
    root = tmp_path_factory.mktemp("root")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "persist").mkdir()
    config = root.parent / "decl.toml"
    config.write_text('[persist."/persist"]\ndirectories = ["/var/lib/app"]\n')
    return root, config


@pytest.mark.parametrize("fact", [facts.FreshrootPlan, facts.FreshrootStatus, facts.FreshrootGenerations])
def test_process_reads_the_real_document(fact: type[FactBase[Any]], scratch: tuple[Path, Path]) -> None:
    root, config = scratch
    name = fact.__name__.removeprefix("Freshroot").lower()
    result = _freshroot(name, "--json", "--root", str(root), "--config", str(config))
    assert result.returncode in (0, 2), result.stderr  # status: 2 = pending
    got = fact().process(result.stdout.splitlines())
    assert got == json.loads(result.stdout)
    assert "error" not in got


def test_process_reads_the_real_facts() -> None:
    result = _freshroot("facts", "--json")
    assert result.returncode == 0, result.stderr
    got = facts.FreshrootFacts().process(result.stdout.splitlines())
    assert got is not None
    assert got["version"] == JSON_VERSION
    assert {"hostname", "memory", "disks", "tools", "rescue"} <= set(got)


def test_process_of_a_real_error_document(scratch: tuple[Path, Path]) -> None:
    # A bad declaration: freshroot prints its JSON error document on stdout (exit 65); the fact
    # gives the message as text, with the exit code and every problem's place.
    root, config = scratch
    bad = config.parent / "bad.toml"
    bad.write_text('[persist."/persist"]\ndirectories = "/var/lib/app"\n')
    result = _freshroot("plan", "--json", "--root", str(root), "--config", str(bad))
    assert result.returncode == 65
    got = facts.FreshrootPlan().process(result.stdout.splitlines())
    assert got is not None
    assert isinstance(got["error"], str)
    assert f"{bad}:2" in got["error"]
    assert got["exit_code"] == 65
    assert got["problems"][0]["file"] == str(bad)
    assert got["problems"][0]["line"] == 2
    assert facts.plan_changes(got) is None  # no counts: no usable plan


# --- process() on what a host can print instead ---------------------------------------------

DOC = {"version": JSON_VERSION, "ok": True, "counts": {"changed": 0}}
MALFORMED: list[tuple[str, list[str], dict[str, Any] | None]] = [
    ("no output", [], None),
    ("blank lines", ["", "   "], None),
    ("one document over lines", ['{"version": 1, "ok": true,', '"counts": {"changed": 0}}'], DOC),
    ("unversioned: read as it is", ['{"current": null, "generations": []}'], {"current": None, "generations": []}),
    ("a traceback", ["Traceback (most recent call last):", '  File "x"', "KeyError: 1"],
     {"error": "Traceback (most recent call last):\n  File \"x\"\nKeyError: 1"}),
    ("sh: not found", ["sh: 1: freshroot: not found"], {"error": "sh: 1: freshroot: not found"}),
    ("a JSON list", ["[1, 2]"], {"error": "[1, 2]"}),
    ("a JSON string", ['"ok"'], {"error": '"ok"'}),
    ("cut short", ['{"version": 1, "ok": tr'], {"error": '{"version": 1, "ok": tr'}),
    ("two documents", ['{"version": 1}', '{"version": 1}'], {"error": '{"version": 1}\n{"version": 1}'}),
    ("error document without problems", ['{"version": 1, "ok": false, "error": {"exit_code": 73, "message": "m"}}'],
     {"error": "m", "exit_code": 73, "problems": []}),
]


@pytest.mark.parametrize("fact", JSON_FACTS)
@pytest.mark.parametrize(("case", "output", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_process_of_malformed_output(fact: type[FactBase[Any]], case: str, output: list[str],
                                     expected: dict[str, Any] | None) -> None:
    assert fact().process(output) == expected


@pytest.mark.parametrize("fact", JSON_FACTS)
@pytest.mark.parametrize("version", [JSON_VERSION + 1, 0, "1", None, True, 1.0])
def test_another_schema_version_is_an_error(fact: type[FactBase[Any]], version: object) -> None:
    got = fact().process([json.dumps({"version": version, "ok": True, "counts": {"changed": 0}})])
    assert got is not None
    assert set(got) == {"error"}
    assert f"printed JSON version {version!r}" in got["error"]
    assert f"reads version {JSON_VERSION}" in got["error"]
    assert facts.plan_changes(got) is None


def test_a_huge_non_json_output_is_cut_to_its_end() -> None:
    lines = [f"line {i}" for i in range(2000)]
    got = facts.FreshrootStatus().process(lines)
    assert got is not None
    assert len(got["error"]) == 2000
    assert got["error"].endswith("line 1999")


# --- the sha256sum facts ----------------------------------------------------------------------


@pytest.mark.parametrize(("output", "expected"), [
    ([], {}),
    ([f"{SHA}  00-common.toml", f"{'b' * 64}  01-web 1.toml"], {"00-common.toml": SHA, "01-web 1.toml": "b" * 64}),
    ([f"{SHA} *00-x.toml"], {}),  # binary-mode marker: not what the command prints
    (["garbage", f"{SHA[:-1]}  short.toml", f"{SHA}  ", f"\\{SHA}  a\\nb.toml"], {}),  # escaped name: skipped
    (["cd: /x: No such file or directory"], {}),
])
def test_staged_process(output: list[str], expected: dict[str, str]) -> None:
    assert facts.FreshrootStaged().process(output) == expected
    assert facts.FreshrootInstalled().process(output) == expected
    assert facts.FreshrootStaged.default() == {}
    assert facts.FreshrootInstalled.default() == {}


def _sh(command: str) -> list[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout.splitlines()


def test_staged_command_on_a_real_stage(tmp_path: Path) -> None:
    stage = tmp_path / STAGE.lstrip("/")
    assert _sh(facts.FreshrootStaged().command(root=str(tmp_path))) == []  # no stage yet: empty, exit 0
    stage.mkdir(parents=True)
    assert _sh(facts.FreshrootStaged().command(root=str(tmp_path))) == []  # no *.toml: the glob stays literal
    (stage / "00-common.toml").write_text("a = 1\n")
    (stage / "01-web 1.toml").write_text("b = 2\n")
    (stage / "notes.txt").write_text("x")
    (stage / "02-dir.toml").mkdir()
    got = facts.FreshrootStaged().process(_sh(facts.FreshrootStaged().command(root=str(tmp_path))))
    import hashlib

    assert got == {"00-common.toml": hashlib.sha256(b"a = 1\n").hexdigest(),
                   "01-web 1.toml": hashlib.sha256(b"b = 2\n").hexdigest()}


def test_installed_command_on_a_real_root(tmp_path: Path) -> None:
    import hashlib

    assert _sh(facts.FreshrootInstalled().command(root=str(tmp_path / "none"))) == []
    (tmp_path / "etc/freshroot/conf.d").mkdir(parents=True)
    (tmp_path / "etc/freshroot/conf.d/00-a.toml").write_text("a = 1\n")
    gen = tmp_path / "usr/lib/systemd/system-generators/freshroot-generator"
    gen.parent.mkdir(parents=True)
    gen.write_text("#!/bin/sh\n")
    got = facts.FreshrootInstalled().process(_sh(facts.FreshrootInstalled().command(root=str(tmp_path))))
    assert got == {"etc/freshroot/conf.d/00-a.toml": hashlib.sha256(b"a = 1\n").hexdigest(),
                   "usr/lib/systemd/system-generators/freshroot-generator": hashlib.sha256(b"#!/bin/sh\n").hexdigest()}


def test_json_fact_commands_never_fail_the_shell() -> None:
    # "; true": a host without freshroot (or without the command) gives no output and exit 0,
    # which process() reads as None, so pyinfra does not fail the host on a read.
    for fact in JSON_FACTS:
        out = subprocess.run(["sh", "-c", fact().command(freshroot="/nonexistent/freshroot")],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0
        assert out.stdout == ""
        assert fact().process(out.stdout.splitlines()) is None


# --- the helpers the operations and deploy read facts through --------------------------------


@pytest.mark.parametrize(("generations", "expected"), [
    (None, None),
    ({}, None),
    ({"error": "boom"}, None),
    ({"current": None, "generations": []}, None),
    ({"generations": [{"number": 1, "current": False}, {"number": 2, "current": True}]}, {"number": 2,
                                                                                            "current": True}),
    ({"generations": [{"number": 1}]}, None),  # no "current" key: none is current
])
def test_current_generation(generations: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    assert facts.current_generation(generations) == expected


@pytest.mark.parametrize(("plan", "expected"), [
    (None, None),
    ({"error": "x"}, None),
    ({"ok": True, "counts": {"changed": 0}}, False),
    ({"ok": True, "counts": {"changed": 3}}, True),
    ({"ok": False, "counts": {"changed": 0}}, True),  # a failing plan is never "no change"
    ({"counts": {}}, True),  # no "ok": not known to be fine
])
def test_plan_changes(plan: dict[str, Any] | None, expected: bool | None) -> None:
    assert facts.plan_changes(plan) is expected
