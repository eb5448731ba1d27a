"""The tmpfiles builtin step of apply: the root's tmpfiles.d plus the declaration's rules, on an
offline root; exact "unchanged" on a second apply; a dry run changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TOOL = str(Path(sys.executable).with_name("freshroot"))
DECLARATION = """
[tmpfiles]
rules = ["d /srv/data 0750 root root -", "f /srv/data/hello 0640 - - - hi there"]
[tmpfiles.settings.app]
"/run/app" = { d = { mode = "0750" } }
"/var/cache/app" = { d = { mode = "0755", age = "10d" } }
"""


def make_root(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "usr/lib/tmpfiles.d").mkdir(parents=True)
    (root / "usr/lib/tmpfiles.d/distro.conf").write_text("d /var/lib/distro 0700 - - -\n")
    conf = tmp_path / "freshroot.toml"
    conf.write_text(DECLARATION)
    return root, conf


def freshroot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TOOL, *args], capture_output=True, text=True, check=False)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if rel.startswith(("run/freshroot", "var/lib/freshroot")):
                continue
            st = os.lstat(p)
            out[rel] = (st.st_mode, st.st_size)
    return out


def test_apply_creates_declared_and_distro_entries(tmp_path: Path) -> None:
    root, conf = make_root(tmp_path)
    first = freshroot("apply", "--root", str(root), "--config", str(conf))
    assert first.returncode == 0, first.stderr
    assert "+ tmpfiles: changed" in first.stdout
    assert oct((root / "srv/data").stat().st_mode & 0o7777) == "0o750"
    assert (root / "srv/data/hello").read_text() == "hi there"
    assert (root / "var/lib/distro").is_dir()
    assert (root / "var/cache/app").is_dir()
    assert not (root / "run/app").exists()  # /run belongs to the booted system, not an offline root
    second = freshroot("apply", "--root", str(root), "--config", str(conf))
    assert second.returncode == 0, second.stderr
    assert "= tmpfiles: unchanged" in second.stdout


def test_a_removed_entry_is_noticed_and_recreated(tmp_path: Path) -> None:
    root, conf = make_root(tmp_path)
    assert freshroot("apply", "--root", str(root), "--config", str(conf)).returncode == 0
    (root / "srv/data/hello").unlink()
    again = freshroot("apply", "--root", str(root), "--config", str(conf))
    assert "+ tmpfiles: changed" in again.stdout
    assert (root / "srv/data/hello").read_text() == "hi there"


def test_plan_changes_nothing(tmp_path: Path) -> None:
    root, conf = make_root(tmp_path)
    before = tree(root)
    out = freshroot("plan", "--root", str(root), "--config", str(conf))
    assert out.returncode == 0, out.stderr
    assert "+ tmpfiles: would change" in out.stdout
    assert tree(root) == before


def test_bad_rule_names_its_toml_line(tmp_path: Path) -> None:
    root, conf = make_root(tmp_path)
    conf.write_text('[tmpfiles]\nrules = [\n  "d /ok",\n  "q~ relative",\n]\n')
    out = freshroot("apply", "--root", str(root), "--config", str(conf))
    assert out.returncode != 0
    assert f"{conf}:4: Path 'relative' not absolute" in out.stdout + out.stderr


def _tmpfiles_lines(out: str) -> list[str]:
    """The action lines below the tmpfiles step in a rendered plan."""
    lines, inside = [], False
    for line in out.splitlines():
        if line.startswith(("├─ ", "└─ ")):
            inside = " tmpfiles:" in line
            continue
        if inside:
            lines.append(line.lstrip("│ ").removeprefix("├─ ").removeprefix("└─ ").strip())
    return lines


def test_plan_after_apply_is_unchanged_whatever_happens_inside_managed_directories(tmp_path: Path) -> None:
    root, conf = make_root(tmp_path)
    assert freshroot("apply", "--root", str(root), "--config", str(conf)).returncode == 0
    # Contents of tmpfiles-managed directories change; their declared mode and owner do not.
    (root / "srv/data/added").write_text("new")
    (root / "srv/data/subdir").mkdir()
    (root / "var/cache/app/blob").write_bytes(b"\0" * 100)
    (root / "var/lib/distro/state").write_text("x")
    os.utime(root / "srv/data", (1, 1))
    os.utime(root / "srv/data/hello", (2, 2))
    before = tree(root)
    out = freshroot("plan", "--root", str(root), "--config", str(conf))
    assert out.returncode == 0, out.stderr
    assert "= tmpfiles: unchanged" in out.stdout, out.stdout
    again = freshroot("apply", "--root", str(root), "--config", str(conf))
    assert "= tmpfiles: unchanged" in again.stdout, again.stdout
    assert tree(root) == before


def test_plan_lists_each_change_the_apply_then_makes(tmp_path: Path) -> None:
    root, conf = make_root(tmp_path)
    assert freshroot("apply", "--root", str(root), "--config", str(conf)).returncode == 0
    os.chmod(root / "srv/data", 0o777)  # a declared directory's mode drifted
    os.chown(root / "srv/data/hello", 1, 1)  # a declared file's owner changed (f: only its mode is declared)
    shutil.rmtree(root / "var/cache/app")  # a declared directory was removed
    out = freshroot("plan", "--root", str(root), "--config", str(conf))
    assert out.returncode == 0, out.stderr
    assert "+ tmpfiles: would change" in out.stdout
    assert _tmpfiles_lines(out.stdout) == ["set mode of /srv/data to 0750",
                                           "create directory /var/cache/app 0755"]
    applied = freshroot("apply", "--root", str(root), "--config", str(conf))
    assert applied.returncode == 0, applied.stderr
    assert _tmpfiles_lines(applied.stdout) == _tmpfiles_lines(out.stdout)
    assert oct((root / "srv/data").stat().st_mode & 0o7777) == "0o750"
    assert (root / "var/cache/app").is_dir()
    assert (root / "srv/data/hello").stat().st_uid == 1  # not declared: left alone
    assert "= tmpfiles: unchanged" in freshroot("plan", "--root", str(root), "--config", str(conf)).stdout


def test_write_lines_are_planned_when_the_content_differs(tmp_path: Path) -> None:
    """w writes at every systemd run; the plan lists it only when the file does not already
    start with the content (w does not truncate); w+ appends, so it is always listed."""
    root, conf = make_root(tmp_path)
    conf.write_text('[tmpfiles]\nrules = ["f /srv/w 0644 - - - old", "w /srv/w - - - - new", '
                    '"f /srv/a 0644", "w+ /srv/a - - - - more"]\n')
    first = freshroot("plan", "--root", str(root), "--config", str(conf))
    lines = _tmpfiles_lines(first.stdout)
    assert "write /srv/w" in lines
    assert "append 4 bytes to /srv/a (w+: at every apply)" in lines
    assert freshroot("apply", "--root", str(root), "--config", str(conf)).returncode == 0
    assert (root / "srv/w").read_text() == "new"
    second = freshroot("plan", "--root", str(root), "--config", str(conf))
    assert _tmpfiles_lines(second.stdout) == ["append 4 bytes to /srv/a (w+: at every apply)"]
    (root / "srv/w").write_text("newer and longer")  # w writes "new" at the start: "newer..." stays
    assert "write /srv/w" not in freshroot("plan", "--root", str(root), "--config", str(conf)).stdout
    (root / "srv/w").write_text("changed")
    assert _tmpfiles_lines(freshroot("plan", "--root", str(root), "--config", str(conf)).stdout)[0] == \
        "write /srv/w"
