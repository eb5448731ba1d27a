"""binsh, usrbinenv, specialfs, and the terminal progress."""

from __future__ import annotations

import io
import os

import pytest

from freshroot.fs.ops import open_root
from freshroot.plan.action import Context, Step
from freshroot.plan.progress import TerminalProgress
from freshroot.plan.result import Status, StepResult

from .helpers import apply, journal_of, make_root, write_decl
from .test_with_persist import in_namespace


def test_binsh_links_what_exists_and_leaves_an_existing_one(tmp_path):
    root = make_root(tmp_path / "root")
    decl = write_decl(tmp_path, "")
    assert apply(root, decl).result("binsh").status is Status.CHANGED
    assert os.readlink(root / "bin/sh") == "/usr/bin/dash"
    assert apply(root, decl).result("binsh").status is Status.UNCHANGED


def test_declared_binsh_replaces_a_link_but_not_a_file(tmp_path):
    root = make_root(tmp_path / "root")
    (root / "usr/bin/bash").write_text("#!fake\n")
    (root / "bin/sh").symlink_to("/usr/bin/dash")
    decl = write_decl(tmp_path, '[environment]\nbinsh = "/usr/bin/bash"\nusrbinenv = "/usr/bin/env-x"\n')
    report = apply(root, decl)
    assert os.readlink(root / "bin/sh") == "/usr/bin/bash"
    assert os.readlink(root / "usr/bin/env") == "/usr/bin/env-x"
    assert any("does not exist" in line for line in report.result("usrbinenv").output)
    (root / "bin/sh").unlink()
    (root / "bin/sh").write_text("a real file\n")
    report = apply(root, decl)
    assert report.result("binsh").status is Status.FAILED
    assert (root / "bin/sh").read_text() == "a real file\n"
    assert apply(root, decl, fix=True).ok
    assert os.readlink(root / "bin/sh") == "/usr/bin/bash"


@pytest.mark.root
@pytest.mark.netns
def test_specialfs_mounts_what_an_offline_root_has_directories_for(tmp_path):
    root = make_root(tmp_path / "root")
    for name in ("proc", "dev"):
        (root / name).mkdir()
    decl = write_decl(tmp_path, "")

    def body() -> None:
        report = apply(root, decl)
        assert report.ok, report.render()
        assert report.result("specialfs").actions == ("mount proc on /proc", "mount bind /dev on /dev",
                                                      "mount tmpfs on /run")
        assert (root / "proc/self").exists()
        assert (root / "dev/null").exists()
        assert apply(root, decl).result("specialfs").status is Status.UNCHANGED

    in_namespace(body)
    assert not (root / "proc/self").exists()  # the mounts lived in the child's namespace only


def test_specialfs_run_is_a_fresh_tmpfs_that_keeps_the_lock_and_journal(tmp_path):
    root = make_root(tmp_path / "root")
    for name in ("proc", "run"):
        (root / name).mkdir(exist_ok=True)
    (root / "run/stale-pidfile").write_text("4242\n")  # what a fresh /run must not show
    decl = write_decl(tmp_path, """
[activation.look]
deps = ["specialfs"]
text = 'ls -A "$FRESHROOT_ROOT/run" > "$FRESHROOT_ROOT/seen"'
""")

    def body() -> None:
        first = apply(root, decl)
        assert first.ok, first.render()
        assert "mount tmpfs on /run" in first.result("specialfs").actions
        assert os.statvfs(root / "run").f_flag & (os.ST_NOSUID | os.ST_NODEV) == os.ST_NOSUID | os.ST_NODEV
        assert (root / "seen").read_text().split() == ["freshroot"]  # fresh: only our own state
        journal = journal_of(root)
        assert journal is not None
        assert journal["run_id"] == first.run_id  # the run that mounted /run is still seen
        assert journal["state"] == "finished"
        second = apply(root, decl)
        assert second.result("specialfs").status is Status.UNCHANGED
        # undo unmounts the fresh /run (and what is below it) and /proc; the disk's /run shows again
        from freshroot.plan.undo import undo

        fd = open_root(str(root))
        try:
            report = undo(Context(fd, str(root)))
        finally:
            os.close(fd)
        assert "unmounted /run" in report.done  # root-relative, as every message
        assert "unmounted /proc" in report.done
        assert (root / "run/stale-pidfile").read_text() == "4242\n"
        assert not (root / "proc/self").exists()
        assert not (root / "run/freshroot").exists()  # a complete undo leaves no store behind

    in_namespace(body)
    assert (root / "run/stale-pidfile").read_text() == "4242\n"  # the disk's /run untouched


def test_progress_prefixes_output_and_redraws_on_a_tty():
    out = io.StringIO()
    progress = TerminalProgress(out, tty=True)
    step = Step("hello", lambda ctx: ())
    progress.start(step, 0, 3)
    progress.output(step, "line one")
    progress.finish(StepResult("hello", Status.CHANGED))
    text = out.getvalue()
    assert "[1/3] hello" in text
    assert "hello: line one\n" in text
    assert text.endswith("\r\x1b[K")
    plain = io.StringIO()
    quiet = TerminalProgress(plain, tty=False)
    quiet.start(step, 0, 1)
    quiet.output(step, "x")
    quiet.finish(StepResult("hello", Status.CHANGED))
    assert plain.getvalue() == "hello: x\n"
