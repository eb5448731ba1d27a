"""A bad declaration changes nothing (issue 15 #1): every command that reads it refuses it
whole, before any step runs, lock and journal included, with every problem at file:line and
exit 65."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from freshroot.cli import main
from freshroot.errors import EXIT_DATAERR
from tests.activation.helpers import make_root


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root`` and ``root`` itself: type, mode, owner, size, mtime, content."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, extra)
    return out


GOOD = """\
[users.alice]
uid = 1000

[etc.motd]
text = "hello"
"""

# (name, declaration appended to GOOD, what each error line must say: (line, text))
BAD: list[tuple[str, str, list[tuple[int, str]]]] = [
    ("relative persist path and a mistyped section", """
[persist."/persist"]
directories = ["/var/log", "relative/path"]
files = ["/etc/x", "/etc/x"]

[persits."/persist"]
directories = ["/var/lib"]
""", [(8, "must be an absolute path"), (9, "declared twice"), (11, "unknown section persits")]),
    ("impermanence names", """
[environment.persistence."/persist"]
directories = ["/var/log"]

[persist."/persist"]
hideMounts = true
directories = [{ directory = "/var/lib/app", method = "bind" }]
""", [(7, "freshroot calls it the section [persist"), (11, "freshroot calls it hide-mounts"),
      (12, "freshroot calls it path")]),
    ("dependency cycle", """
[activation.a]
text = "true"
deps = ["b"]

[activation.b]
text = "true"
deps = ["a"]
""", [(7, "dependency cycle")]),
    ("unknown dependency", """
[activation.a]
text = "true"
deps = ["etcc"]
""", [(7, "which is not defined")]),
    ("bad user and bad persist entry", """
[users.bob]
uid = "many"

[persist."/persist"]
directories = [{ path = "/var/lib/x", mode = "0999" }]
""", [(8, "uid"), (11, "mode")]),
]

COMMANDS = [
    ("apply",),
    ("plan",),
    ("config", "check"),
    ("status",),
    ("render", "--units", "{units}"),
    ("install", "--dry-run"),
    ("tmpfiles", "render"),
]


@pytest.mark.parametrize(("name", "text", "expected"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_a_bad_declaration_changes_nothing_and_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str,
    expected: list[tuple[int, str]], command: tuple[str, ...],
) -> None:
    root = make_root(tmp_path / "root")
    (root / "run").mkdir()
    (root / "persist").mkdir()
    conf = root / "etc" / "freshroot"
    conf.mkdir()
    decl = conf / "freshroot.toml"
    decl.write_text(GOOD + text)
    units = tmp_path / "units"
    before = snapshot(root)
    argv = [a.format(units=units) for a in command]
    rc = main([*argv, "--root", str(root)])
    out, err = capsys.readouterr()
    assert rc == EXIT_DATAERR, err
    assert snapshot(root) == before  # nothing written: no lock, no journal, no /run/freshroot
    assert not (root / "run" / "freshroot").exists()
    assert not units.exists()
    assert "Traceback" not in err
    assert "internal error" not in err
    rows = err.splitlines()
    # the file as the root sees it; the root named once: after the problems, or by install's
    # head line (docs/activation.md, "Paths in output")
    at = "/etc/freshroot/freshroot.toml:"
    assert [*rows, *out.splitlines()].count(f"  root: {root}") + out.count(f"install to {root}\n") == 1, (out, err)
    assert f"{root}/" not in out + err
    for line, what in expected:  # the message, or the hint on the line after it
        assert any(row.startswith((f"{at}{line}:", f"freshroot: {at}{line}:")) and (what in row or what in nxt)
                   for row, nxt in zip(rows, [*rows[1:], ""], strict=True)), (what, err)
