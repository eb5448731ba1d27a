"""The etc step: written atomically, idempotent, hand edits reported, dropped files removed."""

from __future__ import annotations

import json
import os

from freshroot.plan.result import Status

from .helpers import apply, make_root, write_decl

DECL = '''
[etc."motd"]
text = "hello\\n"

[etc."app/app.conf"]
text = "x = 1\\n"
mode = "0600"

[etc."localtime"]
source = "/usr/share/zoneinfo/UTC"
mode = "symlink"
'''


def test_write_link_and_idempotent(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL)
    report = apply(root, decl)
    assert report.ok, report.render()
    assert (root / "etc/motd").read_text() == "hello\n"
    assert (root / "etc/app/app.conf").stat().st_mode & 0o7777 == 0o600
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/UTC"
    manifest = json.loads((root / "etc/.freshroot-manifest.json").read_text())
    assert set(manifest["files"]) == {"/etc/motd", "/etc/app/app.conf", "/etc/localtime"}
    assert apply(root, decl).result("etc").status is Status.UNCHANGED


def test_drift_of_mode_is_repaired(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL)
    apply(root, decl)
    os.chmod(root / "etc/app/app.conf", 0o644)
    assert apply(root, decl).result("etc").status is Status.CHANGED
    assert (root / "etc/app/app.conf").stat().st_mode & 0o7777 == 0o600


def test_hand_edit_is_reported_not_overwritten_unless_fixed(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL)
    apply(root, decl)
    (root / "etc/motd").write_text("mine\n")
    report = apply(root, decl)
    assert (root / "etc/motd").read_text() == "mine\n"
    assert any("changed by hand" in line for line in report.result("etc").output)
    apply(root, decl, fix=True)
    assert (root / "etc/motd").read_text() == "hello\n"


def test_preexisting_file_is_kept_aside(tmp_path):
    root = make_root(tmp_path / "root")
    (root / "etc/motd").write_text("debian's\n")
    apply(root, write_decl(tmp_path, DECL))
    assert (root / "etc/motd").read_text() == "hello\n"
    assert (root / "etc/motd.freshroot-orig").read_text() == "debian's\n"


def test_dropped_file_is_removed_unless_edited(tmp_path):
    root = make_root(tmp_path / "root")
    apply(root, write_decl(tmp_path, DECL))
    (root / "etc/app/app.conf").write_text("edited\n")
    report = apply(root, write_decl(tmp_path, '[etc."other"]\ntext = "o"\n'))
    assert report.ok, report.render()
    assert not (root / "etc/motd").exists()
    assert not (root / "etc/localtime").exists()
    assert (root / "etc/app/app.conf").read_text() == "edited\n"
    assert (root / "etc/other").read_text() == "o"
    manifest = json.loads((root / "etc/.freshroot-manifest.json").read_text())
    assert set(manifest["files"]) == {"/etc/other"}


def test_bad_path_is_a_config_error(tmp_path, capsys):
    from freshroot.cli import main

    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '\n[etc."../shadow"]\ntext = "x"\n')
    assert main(["plan", "--root", str(root), "--config", decl]) == 65
    assert f"{decl}:2:" in capsys.readouterr().err


def test_owner_and_force(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, DECL + '''
[users.svc]
system = true

[etc."svc.conf"]
text = "token = 1\\n"
mode = "0640"
user = "root"
group = "svc"
force = true
''')
    report = apply(root, decl)
    assert report.ok, report.render()
    gid = next(int(line.split(":")[2]) for line in (root / "etc/group").read_text().splitlines()
               if line.startswith("svc:"))
    st = (root / "etc/svc.conf").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, gid, 0o640)
    (root / "etc/svc.conf").write_text("token = mine\n")
    (root / "etc/motd").write_text("mine\n")
    report = apply(root, decl)  # no --fix: only the forced file is put back
    assert (root / "etc/svc.conf").read_text() == "token = 1\n"
    assert (root / "etc/motd").read_text() == "mine\n"
    assert (root / "etc/svc.conf").stat().st_gid == gid
