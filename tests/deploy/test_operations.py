"""freshroot's pyinfra operations, tested as pyinfra tests its own: facts in, commands out,
and a second run (with the facts the first one left behind) yields nothing and says why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyinfra")

from pyinfra.api.command import FileUploadCommand, StringCommand

from freshroot.pyinfra import facts, operations
from freshroot.pyinfra.common import STAGE, declaration_digest, parts

SECRET = "hunter2-never-in-a-fact"


class FakeHost:
    """pyinfra's host as an operation sees it: data, facts by class name, noop."""

    def __init__(self, facts_in: dict[str, Any], data: dict[str, Any] | None = None) -> None:
        self.facts = facts_in
        self.data = data or {}
        self.noops: list[str] = []
        self.fact_calls: list[tuple[str, dict[str, Any]]] = []

    def get_fact(self, cls: type, **kwargs: Any) -> Any:
        self.fact_calls.append((cls.__name__, kwargs))
        value = self.facts.get(cls.__name__)
        return value(kwargs) if callable(value) else value

    def noop(self, description: str) -> None:
        self.noops.append(description)

    def get_temp_filename(self, key: str) -> str:
        return f"/tmp/pyinfra-{hashlib.sha1(key.encode()).hexdigest()}"  # noqa: S324 - pyinfra's naming


def _commands(op: Any, host: FakeHost, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[Any]:
    monkeypatch.setattr(operations, "host", host)
    out: list[Any] = []
    generator: Iterator[Any] = op._inner(**kwargs)
    for command in generator:
        if isinstance(command, FileUploadCommand):
            out.append(("upload", Path(str(command.src)).name, command.dest))
        else:
            out.append(str(command) if isinstance(command, StringCommand) else command)
    return out


@pytest.fixture
def declaration(tmp_path: Path) -> list[str]:
    common = tmp_path / "common.toml"
    common.write_text('[persist."/persist"]\ndirectories = ["/var/lib/a"]\n')
    host = tmp_path / "web1.toml"
    host.write_text(f'[etc."motd"]\ntext = "{SECRET}\\n"\n')
    return [str(common), str(host)]


def _plan(base: dict[str, Any], current: int, digest: str, planned: str) -> dict[str, Any]:
    return {**base, "generation": {"current": current, "digest": digest, "planned": planned,
                                   "same": digest == planned, "confirm": None}}


def _generations(number: int, digest: str, state: str | None = None) -> dict[str, Any]:
    confirm = {"state": state} if state else None
    return {"current": number, "generations": [
        {"number": n, "digest": digest if n == number else "0" * 64, "current": n == number,
         "confirm": confirm if n == number else None} for n in range(1, number + 1)]}


PLAN_NOTHING = {"ok": True, "counts": {"changed": 0, "unchanged": 9, "skipped": 0, "failed": 0}, "steps": []}
PLAN_CHANGES = {"ok": True, "counts": {"changed": 2, "unchanged": 7, "skipped": 0, "failed": 0}, "steps": []}


def test_apply_on_a_fresh_host_uploads_then_applies(declaration, monkeypatch):
    host = FakeHost({"FreshrootStaged": {}})
    commands = _commands(operations.apply, host, monkeypatch, declaration=declaration, root="/",
                         confirm_timeout=120)
    assert commands == [
        f"mkdir -p {STAGE} && chmod 0700 {STAGE}",
        ("upload", "common.toml", f"{STAGE}/00-common.toml"), f"chmod 0600 {STAGE}/00-common.toml",
        ("upload", "web1.toml", f"{STAGE}/01-web1.toml"), f"chmod 0600 {STAGE}/01-web1.toml",
        f"freshroot apply --json --root / --config {STAGE} --confirm-timeout 120",
    ]
    assert host.noops == []
    # Not staged yet: the plan of what is staged would be of another declaration; not read.
    assert [name for name, _ in host.fact_calls] == ["FreshrootStaged"]


def test_second_apply_is_empty_and_says_why(declaration, monkeypatch):
    files = parts(declaration)
    digest = declaration_digest(files)
    host = FakeHost({"FreshrootStaged": {p.name: p.sha256 for p in files},
                     "FreshrootPlan": _plan(PLAN_NOTHING, 3, digest, digest)})
    assert _commands(operations.apply, host, monkeypatch, declaration=declaration) == []
    assert len(host.noops) == 1
    assert "generation 3" in host.noops[0]


def test_facts_never_carry_the_declaration(declaration, monkeypatch):
    files = parts(declaration)
    host = FakeHost({"FreshrootStaged": {p.name: p.sha256 for p in files}, "FreshrootPlan": PLAN_CHANGES})
    _commands(operations.apply, host, monkeypatch, declaration=declaration)
    assert {name for name, _ in host.fact_calls} == {"FreshrootStaged", "FreshrootPlan"}
    for _, kwargs in host.fact_calls:
        text = json.dumps(kwargs)
        assert SECRET not in text
        assert "persist" not in text
    plan_kwargs = next(k for n, k in host.fact_calls if n == "FreshrootPlan")
    assert plan_kwargs["digest"] == declaration_digest(files)


@pytest.mark.parametrize(("plan", "generation_digest"), [(PLAN_CHANGES, "same"), (PLAN_NOTHING, "other"),
                                                         (None, "same"), ({"error": "boom"}, "same")])
def test_apply_when_staged_runs_only_the_apply(declaration, monkeypatch, plan, generation_digest):
    files = parts(declaration)
    digest = declaration_digest(files) if generation_digest == "same" else "e" * 64
    if plan is not None and "counts" in plan:
        plan = _plan(plan, 2, digest, declaration_digest(files))
    host = FakeHost({"FreshrootStaged": {p.name: p.sha256 for p in files}, "FreshrootPlan": plan},
                    data={"freshroot_command": "python3 /root/freshroot.pyz"})
    commands = _commands(operations.apply, host, monkeypatch, declaration=declaration, root="/mnt")
    assert commands == [f"python3 /root/freshroot.pyz apply --json --root /mnt --config /mnt{STAGE}"]
    assert host.noops == []


def test_apply_replaces_a_changed_part_and_removes_a_stale_one(declaration, monkeypatch):
    files = parts(declaration)
    staged = {files[0].name: files[0].sha256, files[1].name: "0" * 64, "02-old.toml": "1" * 64}
    host = FakeHost({"FreshrootStaged": staged})
    commands = _commands(operations.apply, host, monkeypatch, declaration=declaration)
    assert commands[:2] == [f"mkdir -p {STAGE} && chmod 0700 {STAGE}", f"rm -f -- {STAGE}/02-old.toml"]
    assert ("upload", "web1.toml", f"{STAGE}/01-web1.toml") in commands
    assert ("upload", "common.toml", f"{STAGE}/00-common.toml") not in commands


def test_stage_twice(declaration, monkeypatch):
    host = FakeHost({"FreshrootStaged": {}})
    assert len(_commands(operations.stage, host, monkeypatch, declaration=declaration)) == 5
    files = parts(declaration)
    host = FakeHost({"FreshrootStaged": {p.name: p.sha256 for p in files}})
    assert _commands(operations.stage, host, monkeypatch, declaration=declaration) == []
    assert host.noops


def test_rollback(monkeypatch):
    host = FakeHost({"FreshrootGenerations": _generations(3, "a" * 64)})
    assert _commands(operations.rollback, host, monkeypatch) == [
        f"freshroot rollback --json --root / --config {STAGE}"]
    assert _commands(operations.rollback, host, monkeypatch, to=1) == [
        f"freshroot rollback --json --root / --config {STAGE} --to 1"]
    # Second run: at generation 1, nothing before it.
    host = FakeHost({"FreshrootGenerations": _generations(1, "a" * 64)})
    assert _commands(operations.rollback, host, monkeypatch) == []
    assert _commands(operations.rollback, host, monkeypatch, to=1) == []
    assert len(host.noops) == 2


def test_confirm(monkeypatch):
    host = FakeHost({"FreshrootGenerations": _generations(2, "a" * 64, "pending")})
    assert _commands(operations.confirm, host, monkeypatch) == [f"freshroot confirm --json --root / --config {STAGE}"]
    host = FakeHost({"FreshrootGenerations": _generations(2, "a" * 64, "confirmed")})
    assert _commands(operations.confirm, host, monkeypatch) == []
    assert host.noops == ["nothing waits for a confirm"]


def test_install(declaration, monkeypatch):
    host = FakeHost({"FreshrootStaged": {}, "FreshrootInstalled": {}})
    commands = _commands(operations.install, host, monkeypatch, declaration=declaration, machine_id="a" * 32,
                         host_keys="/root/keys")
    assert commands[-1] == (f"freshroot install --root /mnt --config {STAGE} --machine-id {'a' * 32} "
                            "--host-keys /root/keys")
    files = parts(declaration)
    installed = {f"etc/freshroot/conf.d/{i:02d}-{p.name}": p.sha256 for i, p in enumerate(files)}
    installed["usr/lib/systemd/system-generators/freshroot-generator"] = "b" * 64
    host = FakeHost({"FreshrootStaged": {p.name: p.sha256 for p in files}, "FreshrootInstalled": installed})
    assert _commands(operations.install, host, monkeypatch, declaration=declaration) == []
    assert host.noops


def test_fact_commands_and_processing():
    staged = facts.FreshrootStaged()
    assert staged.command(root="/srv/r") == (
        f"cd /srv/r{STAGE} 2>/dev/null && for f in *.toml; do [ -f \"$f\" ] && sha256sum -- \"$f\"; done; true")
    assert staged.process([f"{'a' * 64}  00-x.toml", "garbage"]) == {"00-x.toml": "a" * 64}
    plan = facts.FreshrootPlan()
    expected = f"freshroot plan --json --root / --config {STAGE} 2>/dev/null; true"
    assert plan.command(root="/", digest="d" * 64) == expected
    assert plan.process(['{"ok": true,', '"counts": {"changed": 0}}']) == {"ok": True, "counts": {"changed": 0}}
    assert plan.process(["Traceback"]) == {"error": "Traceback"}
    assert plan.process([]) is None
    assert facts.FreshrootFacts().command() == "freshroot facts --json 2>/dev/null; true"
    assert facts.plan_changes(PLAN_NOTHING) is False
    assert facts.plan_changes(PLAN_CHANGES) is True
    assert facts.plan_changes({"ok": False, "counts": {"changed": 0}}) is True
    assert facts.plan_changes(None) is None


def test_install_runs_the_phases_the_declaration_has(tmp_path, monkeypatch):
    (tmp_path / "disk.toml").write_text('[disk]\ndevice = "/dev/disk/by-id/virtio-x"\n'
                                        '[disk.partitions.root]\ntype = "root"\nformat = "ext4"\nmount = "/"\n')
    (tmp_path / "os.toml").write_text('[os]\nengine = "image"\nimage = "/root/os.tar"\n')
    (tmp_path / "persist.toml").write_text(f'[persist."/persist"]\ndirectories = ["/var/lib/{SECRET}"]\n')
    declaration = [str(tmp_path / n) for n in ("disk.toml", "os.toml", "persist.toml")]
    host = FakeHost({"FreshrootStaged": {}, "FreshrootInstalled": {}}, {"freshroot_command": "python3 -I /r/f.pyz"})
    commands = _commands(operations.install, host, monkeypatch, declaration=declaration, hostname="web1",
                         copy_self=True)
    run = [c for c in commands if isinstance(c, str) and c.startswith("python3")]
    assert run == [
        f"python3 -I /r/f.pyz disk apply --config {STAGE} --mount-root /mnt --hostname web1",
        f"python3 -I /r/f.pyz bootstrap --config {STAGE} --root /mnt",
        f"python3 -I /r/f.pyz install --root /mnt --config {STAGE} --copy-self",
    ]
    # The uploads come first: every phase reads the staged declaration.
    assert commands.index(run[0]) > max(i for i, c in enumerate(commands) if isinstance(c, tuple))
    assert not any(SECRET in str(args) for _name, args in host.fact_calls)
    # Without [disk] and [os], only install.
    host = FakeHost({"FreshrootStaged": {}, "FreshrootInstalled": {}})
    commands = _commands(operations.install, host, monkeypatch, declaration=declaration[2:])
    assert [c for c in commands if isinstance(c, str) and c.startswith("freshroot")] == [
        f"freshroot install --root /mnt --config {STAGE}"]
