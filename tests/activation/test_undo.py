"""``undo`` after a full apply gives back the root as it was: users and groups, /etc files
(written, replaced, linked), /bin/sh and /usr/bin/env, persistence, and the files a snippet
declares, each reverted from the typed records of the state store, newest first."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path

from freshroot.cli import main
from freshroot.fs.ops import open_root
from freshroot.plan.journal import last_run, render_last_run
from tests.nsutil import in_mount_namespace
from tests.persist.helpers import snapshot

from .helpers import apply, make_root, write_decl

DECL = '''
[users.alice]
[groups.staff]
members = ["alice"]

[etc."motd"]
text = "welcome\\n"
[etc."hosts"]
text = "127.0.0.1 localhost freshroot\\n"
[etc."localtime"]
source = "/usr/share/zoneinfo/UTC"
mode = "symlink"

[environment]
binsh = "/usr/bin/dash"
usrbinenv = "/usr/bin/env.real"

[persist."/persist"]
include = ["ids"]
directories = ["/var/lib/app"]
files = [{ path = "/etc/app.conf", how = "symlink" }]

[activation.banner]
text = """
echo "banner" > "$FRESHROOT_ROOT/etc/issue"
mkdir -p "$FRESHROOT_ROOT/var/lib/banner"
echo state > "$FRESHROOT_ROOT/var/lib/banner/state"
"""
deps = ["etc", "persist"]  # /var/lib is persist's by then: the snippet makes only what it declares
files = ["/etc/issue", "/var/lib/banner", "/var/lib/banner/state"]

[activation.plain]
text = "true"
'''

IDS = "persist/var/lib/freshroot"  # the remembered ids: storage, kept by undo on purpose


def _root(base: Path) -> Path:
    root = make_root(base / "root")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")  # replaced: kept as hosts.freshroot-orig
    (root / "etc/issue").write_text("Debian\n")  # written by the snippet
    (root / "usr/share/zoneinfo").mkdir(parents=True)
    (root / "usr/share/zoneinfo/UTC").write_text("TZif\n")
    (root / "usr/bin/env.real").write_text("#!fake\n")
    os.symlink("/usr/bin/busybox", root / "usr/bin/env")  # replaced by the declared link
    (root / "persist/var/lib/app").mkdir(parents=True)
    (root / "persist/var/lib/app/data").write_text("precious\n")
    (root / "persist/etc").mkdir(parents=True)
    (root / "persist/etc/app.conf").write_text("setting = 1\n")
    return root


def _undo(root: Path, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["undo", "--root", str(root), *extra])
    return code, out.getvalue()


def _without_ids(snap: dict[str, tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
    return {k: v for k, v in snap.items() if not k.startswith(IDS)}


def test_undo_after_a_full_apply_gives_back_the_root(tmp_path: Path) -> None:
    def body() -> None:
        root = _root(tmp_path)
        decl = write_decl(tmp_path, DECL)
        before = snapshot(root)
        report = apply(root, decl)
        assert report.ok, report.render()
        # everything happened
        assert "alice:x:" in (root / "etc/passwd").read_text()
        assert "staff:x:" in (root / "etc/group").read_text()
        assert (root / "etc/hosts.freshroot-orig").read_text() == "127.0.0.1 localhost\n"
        assert os.readlink(root / "bin/sh") == "/usr/bin/dash"
        assert os.readlink(root / "usr/bin/env") == "/usr/bin/env.real"
        assert os.readlink(root / "etc/app.conf") == "/persist/etc/app.conf"
        assert (root / "var/lib/app/data").read_text() == "precious\n"  # bound
        assert (root / "var/lib/banner/state").is_file()
        assert (root / "home/alice").is_dir()
        (root / "persist/var/lib/app/new").write_text("written while applied\n")  # data: never removed
        run = last_run(apply_fd := open_root(str(root)))  # what status says
        os.close(apply_fd)
        assert run is not None
        assert run["changes"] > 20
        assert "recorded change(s): `freshroot undo` reverts them" in render_last_run(run)

        code, listed = _undo(root, "--dry-run")
        assert code == 0
        assert "would revert: unmount /var/lib/app" in listed
        assert "would revert: remove /etc/motd" in listed
        assert snapshot(root) != before  # a dry run changes nothing

        code, out = _undo(root, "--json")
        assert code == 0, out
        doc = json.loads(out)
        after = snapshot(root)
        assert (root / "persist/var/lib/app/new").read_text() == "written while applied\n"
        del after["persist/var/lib/app/new"]
        assert _without_ids(after) == _without_ids(before), (out, {
            k: (before.get(k), after.get(k)) for k in set(before) | set(after)
            if not k.startswith(IDS) and before.get(k) != after.get(k)})
        # what it could not revert, and what it kept on purpose, is said
        kept = "\n".join(doc["kept"])
        assert "cannot revert: snippet plain (it declares no files)" in kept
        assert "ids handed out stay remembered" in kept
        assert any("unmounted" in line for line in doc["undone"])
        # and nothing is left to undo: a second undo says so
        assert _undo(root)[1].strip() == "nothing to undo"
        # the root applies again as the first time
        assert apply(root, decl).ok

    in_mount_namespace(body)


def test_undo_keeps_what_was_changed_since(tmp_path: Path) -> None:
    """A file freshroot wrote and someone edited since, a directory that holds data now: kept,
    and said."""
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, '[etc."motd"]\ntext = "welcome\\n"\n[users.bob]\n')
    assert apply(root, decl).ok
    (root / "etc/motd").write_text("edited by hand\n")
    (root / "home/bob/notes").write_text("bob's\n")
    code, out = _undo(root)
    assert code == 0
    assert (root / "etc/motd").read_text() == "edited by hand\n"
    assert "etc/motd: changed since freshroot wrote it, kept" in out
    assert (root / "home/bob/notes").read_text() == "bob's\n"
    assert "home/bob: not empty, kept" in out
    assert "bob:x:" not in (root / "etc/passwd").read_text()  # the account files were freshroot's
