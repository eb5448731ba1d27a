"""`freshroot tmpfiles render` and the [tmpfiles] section; `freshroot tmpfiles --tldr`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from freshroot.cli import main
from tests.tmpfiles.syntax_oracle import clean_env, make_root

DECLARATION = """\
[tmpfiles]
rules = ["d /var/lib/x 0755 root root -", "# a comment"]

[tmpfiles.settings.10-app."/var/lib/app".d]
mode = "0750"
user = "root"
age = "10d"

[tmpfiles.settings.10-app."/run/app/my sock".L]
argument = "/var/lib/app/sock"

[tmpfiles.settings.20-motd."/etc/motd".f]
argument = "Hello \\"world\\" 100%%\\n"
"""


def _root(tmp_path: Path, text: str = DECLARATION) -> Path:
    root = make_root(tmp_path / "root")
    (root / "etc/freshroot").mkdir(parents=True)
    (root / "etc/freshroot/freshroot.toml").write_text(text)
    return root


def test_render_prints_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _root(tmp_path)
    assert main(["tmpfiles", "render", "--root", str(root)]) == 0
    assert capsys.readouterr().out == (
        "# 00-freshroot.conf\nd /var/lib/x 0755 root root -\n# a comment\n\n"
        "# 10-app.conf\nd /var/lib/app 0750 root - 10d\nL /run/app/my\\x20sock - - - - /var/lib/app/sock\n\n"
        '# 20-motd.conf\nf /etc/motd - - - - Hello \\"world\\" 100%%\\n\n'
    )


def test_render_writes_files_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _root(tmp_path)
    out = tmp_path / "out"
    assert main(["tmpfiles", "render", "--root", str(root), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["00-freshroot.conf", "10-app.conf", "20-motd.conf"]
    assert main(["tmpfiles", "render", "--root", str(root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 1
    assert data["files"]["10-app.conf"] == (out / "10-app.conf").read_text()


def test_render_names_the_toml_line_of_a_bad_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _root(tmp_path, DECLARATION + '\n[tmpfiles.settings.30-bad."/x".d]\nmode = "0999"\n')
    assert main(["tmpfiles", "render", "--root", str(root)]) == 65
    out, err = capsys.readouterr()
    assert "freshroot.toml:15: Invalid mode '0999'." in err
    assert out == ""  # refused by the shared check before anything is rendered


@pytest.mark.parametrize(("toml", "message"), [
    ('[tmpfiles]\nrule = []\n', "unknown key tmpfiles.rule"),
    ('[tmpfiles.settings.x."/a".d]\nmode = 493\n', "must be a string such as"),
    ('[tmpfiles.settings.x."/a".d]\nowner = "root"\n', "unknown key"),
    ('[tmpfiles]\nrules = [1]\n', "tmpfiles.rules[0] must be a string"),
])
def test_render_rejects_bad_declarations(toml: str, message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = _root(tmp_path, toml)
    assert main(["tmpfiles", "render", "--root", str(root)]) == 65
    assert message in capsys.readouterr().err


@pytest.mark.oracle
def test_rendered_files_read_back_by_systemd(tmp_path: Path, oracles: Path) -> None:
    root = _root(tmp_path)
    out = root / "etc/tmpfiles.d"
    assert main(["tmpfiles", "render", "--root", str(root), "--output", str(out)]) == 0
    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--root={root}", "--dry-run", "--create"],
                         capture_output=True, env=clean_env(), check=False, text=True)
    assert ref.returncode == 0, ref.stderr
    assert f"Would create symlink {root}/run/app/my sock -> /var/lib/app/sock" in ref.stderr
    assert f"Would create file {root}/etc/motd" in ref.stderr


@pytest.mark.oracle
def test_tldr_subcommand_same_as_reference(tmp_path: Path, oracles: Path,
                                           capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    root = make_root(tmp_path / "root")
    (root / "usr/lib/tmpfiles.d").mkdir(parents=True)
    (root / "usr/lib/tmpfiles.d/a.conf").write_text("# c\nd /a\n\nL /b - - - - c\n")
    ref = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--root={root}", "--tldr"],
                         capture_output=True, env=clean_env(), check=False)
    assert main(["tmpfiles", f"--root={root}", "--tldr"]) == 0
    assert capfdbinary.readouterr().out == ref.stdout
