"""Userspace mount options (x-gvfs-hide, x-gvfs-trash) of the mounts apply makes, in libmount's
utab as mount(8) records them (issue 15).

Every test that mounts runs in a private mount namespace with LIBMOUNT_UTAB pointing at a
scratch file (libmount honours the variable, and so does freshroot): the host's
/run/mount/utab is never written. libmount's own reader (findmnt -m, `mount`) checks what
freshroot wrote, and freshroot's reader what mount(8) wrote.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from freshroot.fs import mount, utab
from freshroot.persist.status import status
from freshroot.persist.steps import run_actions
from freshroot.plan.records import Record, UndoReport, revert_all
from tests.nsutil import in_mount_namespace
from tests.persist.helpers import is_mounted, setup

needs_findmnt = pytest.mark.skipif(shutil.which("findmnt") is None, reason="needs util-linux's findmnt")


def test_lines_as_libmount_writes_and_reads_them() -> None:
    entry = utab.UtabEntry("/home/a b/x\\y", ("x-gvfs-hide", "x-gvfs-trash"), "/dev/vda", "/persist/home/a b",
                           "/persist/home/a b/x\\y", id=66)
    line = entry.line()
    assert line == ("ID=66 SRC=/dev/vda TARGET=/home/a\\040b/x\\134y ROOT=/persist/home/a\\040b "
                    "BINDSRC=/persist/home/a\\040b/x\\134y OPTS=x-gvfs-hide,x-gvfs-trash\n")
    assert utab.parse(line) == (entry,)
    # Unknown keys are skipped, the first of a key kept; a line without a target is no entry.
    assert utab.parse("UNIQID=9 FOO=bar SRC=a TARGET=/t OPTS=x-a TARGET=/u\nSRC=b\n") == (
        utab.UtabEntry("/t", ("x-a",), "a", uniq_id=9),)
    assert utab.user_options(("ro", "x-gvfs-hide", "nosuid", "x-systemd.automount")) == (
        "x-gvfs-hide", "x-systemd.automount")


def _recorder() -> tuple[list[Record], object]:
    records: list[Record] = []

    class Keep:
        def change(self, step: str, record: Record) -> None:
            records.append(record)

    return records, Keep()


@pytest.mark.root
@pytest.mark.netns
@needs_findmnt
def test_apply_on_the_live_root_records_the_options_and_undo_removes_them(tmp_path: Path) -> None:
    base = tmp_path / "sys"
    (base / "persist").mkdir(parents=True)
    (base / "var" / "log").mkdir(parents=True)
    table = tmp_path / "run" / "mount" / "utab"
    text = f"""
[persist."{base}/persist"]
hide-mounts = true
allow-trash = true
directories = ["{base}/var/log", {{ path = "{base}/var/plain", hide = false }}, "{base}/var/lib/a b"]
files = [{{ path = "{base}/etc/app.conf", how = "bind" }}]
"""

    def run() -> dict[str, object]:
        os.environ["LIBMOUNT_UTAB"] = str(table)
        got: dict[str, object] = {}
        a = setup(Path("/"), text)  # the live root: this process's /
        records, keep = _recorder()
        ctx = a.ctx()
        out = run_actions(a.plan(), ctx, store=keep)  # type: ignore[arg-type]
        got["failed"] = out.failed
        got["lines"] = utab.parse(table.read_text())
        got["findmnt"] = subprocess.run(
            ["findmnt", "-m", "-J", "-o", "TARGET,OPTIONS"], capture_output=True, text=True, check=True).stdout
        got["mount"] = subprocess.run(["mount"], capture_output=True, text=True, check=True).stdout
        got["mounts"] = {m.mount_point: m for m in mount.mountinfo() if m.mount_point.startswith(str(base))}
        got["lock"] = (table.parent / "utab.lock").exists()
        got["act"] = (table.parent / "utab.act").exists()
        got["event"] = (table.parent / "utab.event").exists()
        got["again"] = [x.describe() for x in a.plan()]
        report = status(a.p, ctx)
        got["status"] = report.render()
        got["status_json"] = json.dumps(report.to_json())
        # A mount made before its options were recorded (or by an older freshroot): status
        # says so and apply records them.
        table.write_text("".join(e.line() for e in utab.parse(table.read_text()) if e.target != f"{base}/var/log"))
        got["pending"] = [x.describe() for x in a.plan()]
        more = run_actions(a.plan(), ctx, store=keep)  # type: ignore[arg-type]
        got["refailed"] = more.failed
        got["relines"] = utab.parse(table.read_text())
        undo = UndoReport()
        revert_all(ctx, records, undo)
        got["after_undo"] = table.read_text()
        got["still_mounted"] = [p for p in (base / "var/log", base / "etc/app.conf") if is_mounted(p)]
        return got

    got = in_mount_namespace(run)
    assert got["failed"] == [], got["failed"]
    mounts = got["mounts"]
    assert isinstance(mounts, dict)
    lines = got["lines"]
    assert isinstance(lines, tuple)
    by_target = {e.target: e for e in lines}
    both = ("x-gvfs-hide", "x-gvfs-trash")
    for path in (f"{base}/var/log", f"{base}/var/lib/a b", f"{base}/etc/app.conf"):
        e, m = by_target[path], mounts[path]
        assert e.options == both
        # The mount's own mountinfo fields: libmount matches them (by ID from 2.39, before on
        # SRC, TARGET and ROOT), and BINDSRC names the storage path as mount(8) does.
        assert (e.id, e.source, e.root) == (m.mount_id, m.source, m.root)
        assert e.bindsrc == f"{base}/persist{path}"
    # hide = false: only what allow-trash adds.
    assert by_target[f"{base}/var/plain"].options == ("x-gvfs-trash",)
    # libmount's own reader merges the lines into the mounts' options.
    found = {f["target"]: f["options"] for f in json.loads(str(got["findmnt"]))["filesystems"]}
    assert found[f"{base}/var/log"].endswith("x-gvfs-hide,x-gvfs-trash"), found
    assert "x-gvfs-hide" not in found[f"{base}/var/plain"]
    assert f"on {base}/var/log type" in str(got["mount"])
    assert got["lock"]
    assert got["event"]
    assert not got["act"]  # removed once the mount and its line are done
    assert got["again"] == []
    assert f"ok       dir  {base}/var/log (x-gvfs-hide,x-gvfs-trash)" in str(got["status"])
    assert '"user_options": ["x-gvfs-hide", "x-gvfs-trash"]' in str(got["status_json"])
    assert got["pending"] == [f"record x-gvfs-hide,x-gvfs-trash for {base}/var/log in {table}"]
    assert got["refailed"] == []
    assert {e.target for e in got["relines"]} == set(by_target)  # type: ignore[attr-defined]
    assert got["after_undo"] == ""  # the re-recorded line by its own record, the others with their mounts
    assert got["still_mounted"] == []


@pytest.mark.root
@pytest.mark.netns
@needs_findmnt
def test_freshroot_reads_what_mount8_writes_and_keeps_other_lines(tmp_path: Path) -> None:
    src, dst, other = tmp_path / "src", tmp_path / "dst", tmp_path / "other"
    for d in (src, dst, other):
        d.mkdir()
    table = tmp_path / "utab"

    def run() -> dict[str, object]:
        os.environ["LIBMOUNT_UTAB"] = str(table)
        subprocess.run(["mount", "--bind", "-o", "x-gvfs-hide", str(src), str(dst)], check=True)
        subprocess.run(["mount", "--bind", "-o", "x-foo", str(src), str(other)], check=True)
        theirs = utab.parse(table.read_text())
        m = next(x for x in mount.mountinfo() if x.mount_point == str(dst))
        ours = utab.entry_for(m, str(src), ("x-gvfs-hide",))
        removed = utab.Utab.default().remove(str(dst), m.mount_id)
        left = utab.parse(table.read_text())
        return {"theirs": theirs, "ours": ours, "removed": removed, "left": left,
                "umount": subprocess.run(["umount", str(other)], check=False, capture_output=True,
                                         text=True).returncode,
                "after": table.read_text()}

    got = in_mount_namespace(run)
    theirs = got["theirs"]
    assert isinstance(theirs, tuple)
    ours = got["ours"]
    assert isinstance(ours, utab.UtabEntry)
    # The same line as mount(8)'s (libmount 2.38 writes no ID; later versions do).
    mine = next(e for e in theirs if e.target == str(dst))
    assert (mine.source, mine.target, mine.root, mine.bindsrc, mine.options) == (
        ours.source, ours.target, ours.root, ours.bindsrc, ours.options)
    assert got["removed"]
    assert [e.target for e in got["left"]] == [str(other)]  # type: ignore[attr-defined]
    assert got["umount"] == 0
    assert got["after"] == ""  # umount(8) removed its own line from the file freshroot rewrote


@pytest.mark.root
@pytest.mark.netns
def test_an_offline_root_gets_no_utab_line(tmp_path: Path) -> None:
    from freshroot.cli import main
    from tests.persist.helpers import make_root

    root = make_root(tmp_path)
    config = tmp_path / "decl.toml"
    config.write_text('[persist."/persist"]\nhide-mounts = true\ndirectories = ["/var/log"]\n')
    table = tmp_path / "run" / "utab"

    def run() -> tuple[int, str, bool, bool]:
        os.environ["LIBMOUNT_UTAB"] = str(table)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = main(["apply", "--root", str(root), "--config", str(config)])
        return rc, out.getvalue(), is_mounted(root / "var" / "log"), table.exists()

    rc, out, mounted, written = in_mount_namespace(run)
    assert rc == 0, out
    assert "(x-gvfs-hide)" in out
    assert mounted
    assert not written
