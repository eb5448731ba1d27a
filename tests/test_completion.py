"""Shell completion written from the parsers: bash (complete -p, and what the function offers
for a few prefixes), zsh (the function with compadd recorded) and fish (complete -C)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.shell import completion

SRC = Path(__file__).resolve().parents[1] / "src"
REPO = SRC.parent


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> dict[str, Path]:
    """The three scripts, and a `freshroot` on disk for them to call for image names."""
    d = tmp_path_factory.mktemp("completion")
    commands = completion.tree()
    out = {}
    for shell in ("bash", "zsh", "fish"):
        out[shell] = d / f"freshroot.{shell}"
        out[shell].write_text(getattr(completion, shell)(commands))
    prog = d / "bin" / "freshroot"
    prog.parent.mkdir()
    prog.write_text(f"#!/bin/sh\nPYTHONPATH={SRC} exec {sys.executable} -m freshroot \"$@\"\n")
    prog.chmod(0o755)
    out["prog"] = prog
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A root whose declaration has two images."""
    root: Path = tmp_path_factory.mktemp("root")
    (root / "etc" / "freshroot").mkdir(parents=True)
    (root / "etc" / "freshroot" / "freshroot.toml").write_text(
        '[portable.web]\nversion = "1"\n\n[portable.db-server]\nversion = "2"\n')
    (root / "srv").mkdir()
    (root / "srv" / "data").mkdir()
    (root / "srv" / "notes.txt").write_text("x")
    return root


def bash(scripts, *words: str, cwd: Path = REPO) -> list[str]:
    """What _freshroot offers with the cursor at the end of the last word."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (f"source {scripts['bash']}\nCOMP_WORDS=({quoted}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n"
               '_freshroot; printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run(["bash", "--norc", "-c", program], cwd=cwd, capture_output=True, text=True, check=True)
    assert result.stderr == ""
    return [line for line in result.stdout.splitlines() if line]


def test_bash_registers_the_function(scripts):
    program = f"source {scripts['bash']}; complete -p freshroot; complete -p freshroot-tmpfiles"
    result = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["complete -F _freshroot freshroot",
                                          "complete -F _freshroot freshroot-tmpfiles"]


def test_bash_commands_options_and_choices(scripts):
    assert bash(scripts, "freshroot", "ap") == ["apply"]
    assert bash(scripts, "freshroot", "co") == ["confirm", "config", "completion"]
    assert bash(scripts, "freshroot", "config", "") == ["show", "check"]
    assert bash(scripts, "freshroot", "image", "build", "--fo") == ["--format"]
    assert bash(scripts, "freshroot", "image", "build", "--format", "e") == ["erofs"]
    assert bash(scripts, "freshroot", "--debug", "apply", "--fa") == ["--fail-fast"]
    assert bash(scripts, "freshroot", "completion", "") == ["bash", "zsh", "fish"]
    assert bash(scripts, "freshroot-tmpfiles", "--cr") == ["--create"]
    # An option's argument is not a subcommand: "config" here is --root's value.
    assert bash(scripts, "freshroot", "--debug", "apply", "--root", "config", "--j") == ["--json"]


def test_bash_paths(scripts, root):
    assert bash(scripts, "freshroot", "apply", "--root", "sr", cwd=root) == ["srv"]
    assert sorted(bash(scripts, "freshroot", "apply", "--root", "srv/", cwd=root)) == ["srv/data"]
    # bash splits --root=DIR at the "=".
    assert bash(scripts, "freshroot", "apply", "--root", "=", "srv/d", cwd=root) == ["srv/data"]
    assert sorted(bash(scripts, "freshroot", "image", "inspect", "srv/", cwd=root)) == ["srv/data", "srv/notes.txt"]


def test_bash_declared_image_names(scripts, root):
    prog = str(scripts["prog"])
    assert sorted(bash(scripts, prog, "image", "build", "--root", str(root), "")) == ["db-server", "web"]
    assert bash(scripts, prog, "image", "build", "--root", str(root), "w") == ["web"]
    assert bash(scripts, prog, "image", "build", "--root", "=", str(root), "d") == ["db-server"]  # --root=ROOT


def test_images_lists_the_declared_names(root):
    result = subprocess.run([sys.executable, "-m", "freshroot", "completion", "--images", "--root", str(root)],
                            env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, check=True)
    assert sorted(result.stdout.split()) == ["db-server", "web"]


def test_completion_command_prints_each_script(scripts):
    for shell in ("bash", "zsh", "fish"):
        result = subprocess.run([sys.executable, "-m", "freshroot", "completion", shell],
                                env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True,
                                check=True)
        assert result.stdout == scripts[shell].read_text()


def test_committed_scripts_are_up_to_date(scripts):
    """completions/ holds what the packages install: regenerate with tools/make-completions."""
    for shell, name in (("bash", "freshroot"), ("zsh", "_freshroot"), ("fish", "freshroot.fish")):
        assert (REPO / "completions" / shell / name).read_text() == scripts[shell].read_text(), shell


@pytest.mark.skipif(shutil.which("zsh") is None, reason="needs zsh")
def test_zsh(scripts, root):
    def offered(*words: str) -> list[str]:
        array = " ".join("'" + w + "'" for w in words)
        program = (f"compdef() {{ : }}; source {scripts['zsh']}\n"
                   'compadd() { [[ $1 == -- ]] && shift; print -l -- "$@" }\n'
                   '_files() { print "FILES $*" }\ncompset() { : }\n'
                   f"words=({array}); CURRENT=${{#words}}; _freshroot")
        result = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, check=True)
        assert result.stderr == ""
        return result.stdout.splitlines()

    assert subprocess.run(["zsh", "-n", scripts["zsh"]], check=False).returncode == 0
    assert offered("freshroot", "image", "") == ["build", "inspect"]
    assert offered("freshroot", "image", "build", "--format", "") == ["squashfs", "erofs"]
    assert offered("freshroot", "apply", "--root", "") == ["FILES -/"]
    assert "--fail-fast" in offered("freshroot", "apply", "--f")
    assert sorted(offered(str(scripts["prog"]), "image", "build", "--root", str(root), "")) == ["db-server", "web"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="needs fish")
def test_fish(scripts, root):
    def offered(line: str) -> list[str]:
        result = subprocess.run(["fish", "--no-config", "-c", f"source {scripts['fish']}; complete -C {line!r}"],
                                capture_output=True, text=True, check=True)
        return [entry.split("\t")[0] for entry in result.stdout.splitlines()]

    assert offered("freshroot ima") == ["image"]
    assert offered("freshroot config ") == ["check", "show"]
    assert offered("freshroot image build --format ") == ["erofs", "squashfs"]
    assert offered("freshroot apply --fa") == ["--fail-fast"]
    assert offered("freshroot-tmpfiles --cr") == ["--create"]
    assert offered(f"{scripts['prog']} image build --root {root} ") == ["db-server", "web"]
    assert offered(f"{scripts['prog']} image build --root={root} w") == ["web"]
