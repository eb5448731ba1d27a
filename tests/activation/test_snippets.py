"""Snippets: NixOS's ordering example, named cycles, strict shell, keep-going, fail-fast, dry runs."""

from __future__ import annotations

import json

import pytest

from freshroot.cli import main
from freshroot.errors import ConfigError
from freshroot.plan.executor import order
from freshroot.plan.result import Status

from .helpers import apply, make_root, snapshot, steps_of, write_decl


def test_nixos_example_runs_after_etc(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '''
[etc."motd"]
text = "hello\\n"

[activation.a-first]
text = 'cat "$FRESHROOT_ROOT/etc/motd" > "$FRESHROOT_ROOT/seen"'
deps = ["etc"]
''')
    names = [s.name for s in order(steps_of(root, decl))]
    assert names.index("a-first") > names.index("etc")
    report = apply(root, decl)
    assert report.ok, report.render()
    assert (root / "seen").read_text() == "hello\n"


def test_cycle_is_an_error_naming_it(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '''
[activation.a]
text = "true"
deps = ["b"]

[activation.b]
text = "true"
deps = ["c"]

[activation.c]
text = "true"
deps = ["a"]
''')
    with pytest.raises(ConfigError) as e:
        order(steps_of(root, decl))
    message = str(e.value)
    assert any(c in message for c in ("a => b => c => a", "b => c => a => b", "c => a => b => c"))
    assert f"{decl}:" in message


def test_unknown_dependency_is_an_error(tmp_path, capsys):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '[activation.a]\ntext = "true"\ndeps = ["ect"]\n')
    assert main(["apply", "--root", str(root), "--config", decl]) == 65
    err = capsys.readouterr().err
    assert f"{decl}:1: 'a' depends on 'ect', which is not defined" in err
    assert "did you mean 'etc'" in err


def test_builtin_name_is_reserved(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '[activation.etc]\ntext = "true"\n')
    with pytest.raises(ConfigError, match="builtin step"):
        steps_of(root, decl)


def test_failure_inside_a_function_is_caught(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '''[activation.f]
text = """
helper() {
  false
  echo "not reached" > "$FRESHROOT_ROOT/reached"
}
helper
echo "not reached either" > "$FRESHROOT_ROOT/after"
"""
''')
    report = apply(root, decl)
    result = report.result("f")
    assert result.status is Status.FAILED
    assert "at line 2: `false`" in (result.error or "")
    assert not (root / "reached").exists()
    assert not (root / "after").exists()


@pytest.mark.parametrize("text", ["x=$(false; echo y)", "false | true", "echo ok; (exit 3)"])
def test_strict_shell(tmp_path, text):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, f"[activation.s]\ntext = {json.dumps(text)}\n")
    assert apply(root, decl).result("s").status is Status.FAILED


def test_keep_going_and_fail_fast(tmp_path, capsys):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '''
[activation.a-broken]
text = "echo broke; exit 4"

[activation.b-needs-a]
text = 'touch "$FRESHROOT_ROOT/b"'
deps = ["a-broken"]

[activation.c-independent]
text = 'touch "$FRESHROOT_ROOT/c"'
''')
    assert main(["apply", "--root", str(root), "--config", decl]) == 1
    out = capsys.readouterr()
    assert "failed: a-broken" in out.out
    assert "a-broken: broke" in out.err  # output prefixed with the snippet's name
    assert (root / "c").exists()
    assert not (root / "b").exists()
    (root / "c").unlink()
    assert main(["apply", "--root", str(root), "--config", decl, "--fail-fast", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["failed"] == ["a-broken"]
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["c-independent"]["status"] == "skipped"
    assert "--fail-fast" in steps["c-independent"]["reason"]
    assert not (root / "c").exists()


def test_dry_run_changes_nothing(tmp_path, capsys):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '''
[users.alice]
extra-groups = ["wheel"]

[groups.wheel]

[etc."motd"]
text = "hi\\n"

[environment]
binsh = "/usr/bin/dash"

[activation.writes]
text = 'touch "$FRESHROOT_ROOT/written"'

[activation.dry-aware]
text = 'echo "$FRESHROOT_ACTION" > /dev/null; [ "$FRESHROOT_ACTION" = dry-activate ] || touch "$FRESHROOT_ROOT/x"'
supports-dry-activation = true
''')
    before = snapshot(root)
    assert main(["plan", "--root", str(root), "--config", decl]) == 0
    text = capsys.readouterr().out
    assert "writes: skipped" in text
    assert "add user alice" in text
    assert "link /bin/sh -> /usr/bin/dash" in text
    assert main(["apply", "--dry-run", "--json", "--root", str(root), "--config", decl]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {s["name"]: s["status"] for s in data["steps"]}["dry-aware"] == "changed"
    assert snapshot(root) == before
    # and the real run does what the plan said
    report = apply(root, decl)
    assert report.ok, report.render()
    assert (root / "written").exists()
    assert (root / "x").exists()
    assert (root / "bin" / "sh").readlink().as_posix() == "/usr/bin/dash"
    assert "alice:" in (root / "etc" / "passwd").read_text()


def test_second_apply_changes_nothing(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '[users.bob]\n[etc."a/b.conf"]\ntext = "x"\nmode = "0600"\n')
    assert apply(root, decl).changed
    again = apply(root, decl)
    assert again.ok
    assert not again.changed, again.render()
