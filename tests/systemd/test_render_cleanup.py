"""``render --units DIR`` removes the units it wrote last time and no longer writes, and
nothing else (issue 20): a unit edited since, or a file it never wrote, stays."""

from __future__ import annotations

import json
from pathlib import Path

from tests.systemd.helpers import freshroot, make_root

BIG = """\
[persist."/persist"]
directories = [{ path = "/var/log", early = true }, { path = "/var/lib/app", early = true },
               { path = "/srv/www", early = true }]
"""
SMALL = """\
[persist."/persist"]
directories = [{ path = "/var/log", early = true }]
"""


def _render(root: Path, out: Path, *extra: str) -> dict[str, object]:
    result = freshroot("render", "--units", str(out), "--root", str(root), "--initrd", "--json", *extra)
    assert result.returncode == 0, result.stderr
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()}


def test_units_no_longer_rendered_are_removed(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", BIG)
    out = tmp_path / "units"
    first = _render(root, out)
    big = _files(out)
    assert "sysroot-var-lib-app.mount" in big
    assert "sysroot-var-log.mount" in big
    assert first["removed"] == []
    mine = out / "local-notes.conf"  # a file render never wrote
    mine.write_text("mine\n")

    (root / "etc/freshroot/freshroot.toml").write_text(SMALL)
    second = _render(root, out)
    small = _files(out)
    gone = big - small
    assert "sysroot-var-lib-app.mount" in gone
    assert "sysroot-var-log.mount" in small
    assert sorted(second["removed"]) == sorted(gone)  # type: ignore[call-overload]
    assert mine.read_text() == "mine\n"
    # directories left empty by a removal go too; none is left empty
    assert not [d for d in out.rglob("*") if d.is_dir() and not any(d.iterdir())]
    # rendering the same declaration again removes nothing
    assert _render(root, out)["removed"] == []
    assert _files(out) == small


def test_edited_unit_is_kept_and_named(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", BIG)
    out = tmp_path / "units"
    _render(root, out)
    edited = out / "sysroot-var-lib-app.mount"
    edited.write_text(edited.read_text() + "# edited by hand\n")
    (root / "etc/freshroot/freshroot.toml").write_text(SMALL)
    result = freshroot("render", "--units", str(out), "--root", str(root), "--initrd")
    assert result.returncode == 0, result.stderr
    assert edited.exists()
    assert "sysroot-var-lib-app.mount: written by an earlier render and changed since; left in place" in result.stderr


def test_without_manifest_nothing_is_removed(tmp_path: Path) -> None:
    """A directory an older freshroot rendered into (no manifest): nothing is guessed."""
    root = make_root(tmp_path / "root", BIG)
    out = tmp_path / "units"
    _render(root, out)
    (out / ".freshroot-units.json").unlink()
    before = _files(out)
    (root / "etc/freshroot/freshroot.toml").write_text(SMALL)
    assert _render(root, out)["removed"] == []
    assert before <= _files(out)


def test_manifest_naming_other_paths_removes_nothing_outside(tmp_path: Path) -> None:
    """A manifest written by someone else cannot make render delete outside DIR or a file it
    did not write with that content."""
    root = make_root(tmp_path / "root", SMALL)
    out = tmp_path / "units"
    out.mkdir()
    outside = tmp_path / "precious"
    outside.write_text("keep")
    (out / "other.service").write_text("[Unit]\n")
    (out / ".freshroot-units.json").write_text(json.dumps({"version": 1, "files": {
        "../precious": "sha256:" + "0" * 64, "other.service": "sha256:" + "0" * 64}}))
    _render(root, out)
    assert outside.read_text() == "keep"
    assert (out / "other.service").exists()
