"""--root given relative to the working directory (issue 14, #7).

Snippets run with the root as their working directory and get it as $FRESHROOT_ROOT: a
relative --root passed on as it was named a directory *inside* the root (`cd /tmp/x &&
freshroot apply --root root` made `touch "$FRESHROOT_ROOT/marker"` write root/root/marker,
the target's /root/marker). freshroot makes --root absolute and real once, where the
command line is parsed; freshroot-tmpfiles keeps systemd-tmpfiles' rule (made absolute
against the working directory), checked against systemd-tmpfiles itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import freshroot
from freshroot.cli import build_parser

pytestmark = [pytest.mark.root]

DECL = """[activation.mark]
text = 'touch "$FRESHROOT_ROOT/marker"; pwd > "$FRESHROOT_ROOT/cwd"'
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(freshroot.__file__).parent.parent)}


def _root(base: Path) -> Path:
    root = base / "root"
    for d in ("etc", "root", "usr/bin", "bin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    return root


def test_relative_root_snippet_writes_inside_the_root(scratch: Path) -> None:
    """Fails on the old code: the marker landed in root/root/marker."""
    root = _root(scratch)
    (scratch / "decl.toml").write_text(DECL)
    done = subprocess.run([sys.executable, "-m", "freshroot", "apply", "--root", "root", "--config", "decl.toml"],
                          cwd=scratch, env=_env(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "marker").exists()
    assert not (root / "root/marker").exists(), "the snippet wrote below the root's /root"
    assert (root / "cwd").read_text().strip() == str(root.resolve())


def test_relative_root_through_a_symlink_is_made_real(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command that takes --root gets it absolute and real, from the one parser option."""
    _root(scratch)
    (scratch / "link").symlink_to("root")
    monkeypatch.chdir(scratch)
    for argv in (["apply", "--root", "link"], ["status", "--root", "./root/"], ["migrate", "--root", "link", "/x"],
                 ["undo", "--root", "root/../root"]):
        args = build_parser(argv).parse_args(argv)
        assert args.root == str((scratch / "root").resolve()), argv
    args = build_parser(["status"]).parse_args(["status"])
    assert args.root == "/"


def test_tmpfiles_relative_root_as_systemd_tmpfiles(scratch: Path, oracles: Path) -> None:
    """freshroot-tmpfiles --root relative: what systemd-tmpfiles makes of it (against the
    working directory), in two scratch trees."""
    conf = scratch / "x.conf"
    conf.write_text("d /made 0750 - - -\nf /made/file 0640 - - - hello\n")
    trees = {}
    ours = [sys.executable, "-c", "import sys; from freshroot.tmpfiles.commands import main; sys.exit(main())"]
    for name, argv in (("ours", ours), ("theirs", [str(oracles / "systemd-tmpfiles-new")])):
        base = scratch / name
        (base / "tree").mkdir(parents=True)
        done = subprocess.run([*argv, "--create", "--root", "tree", str(conf)], cwd=base, env=_env(),
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, (name, done.stdout, done.stderr)
        made = base / "tree/made/file"
        trees[name] = (made.read_text(), made.stat().st_mode & 0o7777, (base / "tree/made").stat().st_mode & 0o7777)
    assert trees["ours"] == trees["theirs"]
