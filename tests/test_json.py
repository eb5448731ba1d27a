"""Every command with --json (issue 20): its document carries "version" (the schema's,
docs/json.md), and an error gives a JSON error document on stdout as well, with the exit code,
the message and each problem's file and line.

The commands are found in the parser, so a command that gains --json without a case here
fails the first test. Each runs as `python -m freshroot` in a private mount namespace
(apply binds on the scratch root) on a scratch root.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from freshroot.cli import ArgumentParser
from freshroot.features import COMMAND_MODULES
from freshroot.output import JSON_VERSION

REPO = Path(__file__).resolve().parents[1]

DECLARATION = """\
[persist."/persist"]
directories = ["/var/lib/app"]

[portable.demo]
version = "1.0"
units = ["UNIT"]
contents = ["/usr/bin/true"]
"""
BAD = '[persist."/persist"]\ndirectories = = ["/var/lib/app"]\n'  # line 2: not TOML


def json_commands() -> set[str]:
    """Every command (and subcommand) whose parser has --json, as "config show"."""
    parser = ArgumentParser(prog="freshroot")
    sub = parser.add_subparsers(parser_class=ArgumentParser)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    found: set[str] = set()

    def walk(p: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, (*words, name))
        if any("--json" in a.option_strings for a in p._actions) and words:
            found.add(" ".join(words))

    walk(parser, ())
    return found


# A second declaration, applied before rollback goes back to the first.
SECOND = '[etc.motd]\ntext = "second\\n"\n'
# disk plan|apply: one ext4 root partition of a scratch disk (a loop device named through a
# by-id directory of the test's own, as tests/disk does).
SERIAL = "FRJSON20"
DISK = f"""\
[disk]
serial = "{SERIAL}"
[disk.partitions.root]
type = "root"
format = "ext4"
mount = "/"
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed once the socket is: a connection is refused


class Scene:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        for d in ("etc", "persist", "var/lib/app"):
            (self.root / d).mkdir(parents=True)
        (self.root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (self.root / "etc/group").write_text("root:x:0:\n")
        (self.root / "var/lib/app/data").write_text("rows")
        (base / "demo.service").write_text("[Unit]\nDescription=demo\n\n[Service]\nExecStart=/usr/bin/true\n")
        self.config = base / "freshroot.toml"
        self.config.write_text(DECLARATION.replace("UNIT", str(base / "demo.service")))
        self.bad = base / "bad.toml"
        self.bad.write_text(BAD)
        self.second = base / "second.toml"
        self.second.write_text(DECLARATION.replace("UNIT", str(base / "demo.service")) + SECOND)
        # deploy: one host whose SSH port refuses the connection
        (base / "fleet").mkdir()
        (base / "fleet/common.toml").write_text(SECOND)
        (base / "fleet/fleet.toml").write_text(
            f'[fleet]\nparts = ["common.toml"]\nconnect_timeout = 3\nport = {_closed_port()}\nkey = "nokey"\n'
            '\n[hosts.h1]\naddress = "127.0.0.1"\n')
        if shutil.which("ssh-keygen"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "fleet/nokey")],
                           check=True)
        self.fleet = base / "fleet/fleet.toml"
        self.disk_config = base / "disk.toml"
        self.disk_config.write_text(DISK)
        self.by_id: Path | None = None  # set by the disk fixture
        (base / "mnt").mkdir()

    def disk_argv(self) -> list[str]:
        assert self.by_id is not None
        return ["--config", str(self.disk_config), "--device", str(self.by_id / f"virtio-{SERIAL}"),
                "--hostname", "json20"]

    def run(self, *argv: str) -> tuple[int, dict[str, object], str]:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        if self.by_id is not None:
            env["FRESHROOT_DEV_BY_ID"] = str(self.by_id)
        proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-m", "freshroot",
                               *argv], capture_output=True, text=True, env=env, check=False, timeout=120)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"freshroot {' '.join(argv)}: stdout is not one JSON document:\n{proc.stdout}\n{proc.stderr}")
        return proc.returncode, doc, proc.stderr


def _common(s: Scene) -> tuple[str, ...]:
    return ("--root", str(s.root), "--config", str(s.config))


def _rollback(s: Scene) -> tuple[list[str], set[int]]:
    """A second generation first, so that there is one to go back to."""
    code, doc, err = s.run("apply", "--root", str(s.root), "--config", str(s.second), "--json")
    assert code == 0, (doc, err)
    return ["rollback", *_common(s)], {0}


# command -> (argv of a run that succeeds, the exit codes it may end with); in this order (migrate
# before apply: apply refuses to hide data; undo last).
SUCCESS: dict[str, Callable[[Scene], tuple[list[str], set[int]]]] = {
    "facts": lambda s: (["facts"], {0}),
    "config show": lambda s: (["config", "show", *_common(s)], {0}),
    "config check": lambda s: (["config", "check", *_common(s)], {0}),
    "plan": lambda s: (["plan", *_common(s)], {1}),  # 1: it lists the refusal to hide /var/lib/app
    "migrate": lambda s: (["migrate", *_common(s), "/var/lib/app"], {0}),
    "apply": lambda s: (["apply", *_common(s)], {0}),
    "rollback": _rollback,
    "generations": lambda s: (["generations", *_common(s)], {0}),
    "confirm": lambda s: (["confirm", *_common(s)], {0}),  # nothing waits for a confirm: 0
    "status": lambda s: (["status", *_common(s)], {0, 2}),
    "audit": lambda s: (["audit", *_common(s), "--sizes"], {0}),
    "tmpfiles": lambda s: (["tmpfiles", "render", *_common(s)], {0}),
    "render": lambda s: (["render", *_common(s), "--units", str(s.base / "units")], {0}),
    "image build": lambda s: (["image", "build", "demo", "--config", str(s.config), "-o", str(s.base / "img")], {0}),
    "image inspect": lambda s: (["image", "inspect", str(s.base / "img" / "demo_1.0.raw")], {0}),
    "undo": lambda s: (["undo", *_common(s)], {0}),
    # 1: its one host refuses the connection; the document says so
    "deploy": lambda s: (["deploy", "plan", "--fleet", str(s.fleet)], {1}),
    # on a scratch disk (test_disk_documents_carry_the_schema_version)
    "disk plan": lambda s: (["disk", "plan", *s.disk_argv()], {0}),
    "disk apply": lambda s: (["disk", "apply", *s.disk_argv(), "--mount-root", str(s.base / "mnt")], {0}),
}
NEEDS_DISK = {"disk plan", "disk apply"}
# roots needs a btrfs [root] volume: only its error document is checked here (tests/root has the rest).
ERROR_ONLY = {"roots"}
# Commands whose failure is found before any declaration is read, or whose declaration is read
# leniently (generations and confirm find their directory even with a broken one): how each
# fails, the code, and whether the error names a file and line.
ERRORS: dict[str, Callable[[Scene], tuple[list[str], int, bool]]] = {
    "facts": lambda s: (["facts", "--no-such-option"], 65, False),  # reads /proc and /sys: only a usage error
    "disk plan": lambda s: (["disk", "plan", "--config", str(s.bad)], 65, True),
    "disk apply": lambda s: (["disk", "apply", "--config", str(s.bad)], 65, True),
    "generations": lambda s: (["generations", "--root", str(s.root), "--generations", "relative"], 65, False),
    "confirm": lambda s: (["confirm", "--root", str(s.root), "--generations", "relative"], 65, False),
    "rollback": lambda s: (["rollback", *_common(s)], 73, False),  # no generation to go back to
    "deploy": lambda s: (["deploy", "plan", "--fleet", str(s.bad)], 65, True),
    "image inspect": lambda s: (["image", "inspect", str(s.base / "missing.raw")], 73, False),
    "image build": lambda s: (["image", "build", "demo", "--config", str(s.bad)], 65, True),
    "tmpfiles": lambda s: (["tmpfiles", "render", "--root", str(s.root), "--config", str(s.bad)], 65, True),
}


def documented() -> dict[str, tuple[set[str], set[str]]]:
    """docs/json.md: each command (as "config show", "tmpfiles" for `tmpfiles render`, and
    "error") to (its keys, those present only sometimes: "only ..." in their meaning)."""
    tables: dict[str, tuple[set[str], set[str]]] = {}
    names: list[str] = []
    for line in (REPO / "docs" / "json.md").read_text().splitlines():
        if line.startswith("## "):
            names = [n.removeprefix("freshroot ").replace("tmpfiles render", "tmpfiles")
                     for n in re.findall(r"`(freshroot [a-z ]+)`", line)] or (["error"] if "Errors" in line else [])
            for n in names:
                tables[n] = (set(), set())
        elif names and (m := re.match(r"\| `([a-z_]+)` \| [^|]+ \| (.*) \|$", line)):
            for n in names:
                tables[n][0].add(m.group(1))
                if m.group(2).startswith("only "):
                    tables[n][1].add(m.group(1))
    return tables


def _check_keys(name: str, doc: dict[str, object]) -> None:
    keys, optional = documented()[name]
    assert set(doc) <= keys, (name, "not in docs/json.md:", set(doc) - keys)
    assert keys - optional <= set(doc), (name, "documented, missing:", keys - optional - set(doc))


def test_every_json_command_is_covered() -> None:
    assert json_commands() == set(SUCCESS) | ERROR_ONLY
    assert set(documented()) == json_commands() | {"apply", "error"}  # apply shares plan's table


@pytest.mark.root
@pytest.mark.netns
def test_documents_carry_the_schema_version(tmp_path: Path) -> None:
    if not shutil.which("mksquashfs"):
        pytest.skip("mksquashfs is needed for image build")
    s = Scene(tmp_path)
    for name, case in SUCCESS.items():
        if name in NEEDS_DISK or (name == "deploy" and importlib.util.find_spec("pyinfra") is None):
            continue
        _check_success(s, name, case)
    assert (s.root / "persist/var/lib/app/data").read_text() == "rows"  # migrate did move it


def _check_success(s: Scene, name: str, case: Callable[[Scene], tuple[list[str], set[int]]]) -> dict[str, object]:
    argv, codes = case(s)
    code, doc, err = s.run(*argv, "--json")
    assert code in codes, (name, code, err, doc)
    assert next(iter(doc)) == "version", name  # the first key
    assert doc["version"] == JSON_VERSION, name
    assert "\x1b" not in err, name  # no progress or colour with --json
    _check_keys("plan" if name == "apply" else name, doc)
    if "--root" in argv:  # the root, once, second; the paths inside the document as it sees them
        assert list(doc)[1] == "root", name
        assert doc["root"] == str(s.root), name
        assert f"{s.root}/" not in json.dumps(doc), name
    return doc


@pytest.fixture
def scratch_disk(tmp_path: Path) -> Iterator[Path]:
    """The by-id directory naming a fresh 300 MiB sparse disk on a loop device."""
    if os.geteuid() != 0 or shutil.which("systemd-repart") is None or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs root, systemd-repart and mkfs.ext4")
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(300 << 20)
    made = subprocess.run(["losetup", "--find", "--show", "--partscan", str(image)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"no loop device: {made.stderr.strip()}")
    device = made.stdout.strip()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / f"virtio-{SERIAL}").symlink_to(device)
    try:
        yield by_id
    finally:
        subprocess.run(["partx", "--delete", device], capture_output=True, check=False)
        subprocess.run(["losetup", "--detach", device], capture_output=True, check=False)


@pytest.mark.root
@pytest.mark.xdist_group("loop")
def test_disk_documents_carry_the_schema_version(tmp_path: Path, scratch_disk: Path) -> None:
    s = Scene(tmp_path / "scene")
    s.by_id = scratch_disk
    plan = _check_success(s, "disk plan", SUCCESS["disk plan"])
    assert plan["changes"] == 1
    applied = _check_success(s, "disk apply", SUCCESS["disk apply"])  # in the private mount namespace
    assert "done" in applied
    planned = plan["partitions"]
    assert isinstance(planned, list)
    assert applied["partitions"] == [{**p, "activity": "create"} for p in planned]  # made as planned


@pytest.mark.root
@pytest.mark.netns
def test_errors_give_a_json_error_document(tmp_path: Path) -> None:
    s = Scene(tmp_path)
    for name in sorted(json_commands()):
        if name in ERRORS:
            argv, expected, located = ERRORS[name](s)
        else:  # a declaration that is not TOML, at line 2
            argv, expected, located = [*name.split(), "--root", str(s.root), "--config", str(s.bad)], 65, True
            if name == "render":
                argv += ["--units", str(tmp_path / "u")]
            if name == "migrate":
                argv += ["/var/lib/app"]
        code, doc, err = s.run(*argv, "--json")
        assert code == expected, (name, code, doc, err)
        assert doc["version"] == JSON_VERSION, name
        assert doc["ok"] is False, name
        error = doc["error"]
        assert isinstance(error, dict)
        assert error["exit_code"] == code, name
        assert error["message"], name
        assert err.strip(), name  # the message is on stderr too
        _check_keys("error", doc)
        if located:
            problem = error["problems"][0]
            assert (problem["file"], problem["line"]) == (str(s.bad), 2), (name, problem)
            assert f"{s.bad}:2:" in error["message"], name


def test_usage_error_gives_a_json_error_document() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "freshroot", "plan", "--json", "--no-such-option"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 65
    doc = json.loads(proc.stdout)
    assert doc["version"] == JSON_VERSION
    assert doc["error"]["exit_code"] == 65
    assert "--no-such-option" in doc["error"]["message"]
    assert "unrecognized arguments" in proc.stderr


def test_without_json_an_error_prints_nothing_on_stdout(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    (tmp_path / "root").mkdir()  # the declaration on the host, outside the root: named as a host path
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "freshroot", "config", "check", "--config", str(bad),
                           "--root", str(tmp_path / "root")], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 65
    assert proc.stdout == ""
    assert f"{bad}:2:" in proc.stderr


def test_deploy_report_file_gets_the_error_document(tmp_path: Path) -> None:
    """deploy --report FILE: the text stays on stdout, FILE gets the document, an error's too."""
    bad = tmp_path / "fleet.toml"
    bad.write_text(BAD)
    out = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "freshroot", "deploy", "plan", "--fleet", str(bad), "--report",
                           str(out)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 65
    assert proc.stdout == ""
    assert f"{bad}:2:" in proc.stderr
    doc = json.loads(out.read_text())
    assert doc["version"] == JSON_VERSION
    assert doc["error"]["problems"][0]["line"] == 2
    # a usage error with --report FILE: no JSON on stdout either; with --json alone, there is
    proc = subprocess.run([sys.executable, "-m", "freshroot", "deploy", "plan", "--report", str(out), "--bogus"],
                          capture_output=True, text=True, env=env, check=False)
    assert (proc.returncode, proc.stdout) == (65, "")
    proc = subprocess.run([sys.executable, "-m", "freshroot", "deploy", "plan", "--json", "--bogus"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 65
    assert json.loads(proc.stdout)["error"]["exit_code"] == 65
