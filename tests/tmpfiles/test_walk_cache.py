"""The create phase's memory of SAFE-walked directories (freshroot.tmpfiles.context).

Opening an entry through a remembered parent must give what a full chase(SAFE|NOFOLLOW) gives,
errors included, and the memory must stay within a small fd budget.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.errors import UnsafePathError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.tmpfiles.context import Context, ItemFailed, Options
from freshroot.tmpfiles.model import Config

pytestmark = [pytest.mark.root]

ALICE = 1000


def _tree(root: Path) -> None:
    (root / "srv/plain").mkdir(parents=True)
    (root / "srv/plain/file").write_text("x")
    (root / "srv/plain/link").symlink_to("file")
    (root / "srv/to-plain").symlink_to("plain")
    os.symlink(".", root / "srv/dot")  # a user's "." link in a root directory
    os.chown(root / "srv/dot", ALICE, ALICE, follow_symlinks=False)
    (root / "srv/file").write_text("y")
    (root / "srv/alice").mkdir()
    os.chown(root / "srv/alice", ALICE, ALICE)
    (root / "srv/alice/roots").write_text("z")  # root's file in a user's directory
    (root / "srv/alice/rootdir").mkdir()  # and root's directory
    (root / "srv/plain/deep/er").mkdir(parents=True)
    (root / "srv/plain/up").symlink_to("../plain")
    (root / "srv/abs").symlink_to("/srv/plain")


PATHS = ["/srv/plain/file", "/srv/plain/link", "/srv/to-plain/file", "/srv/dot/file", "/srv/dot/plain",
         "/srv/file/x", "/srv/missing/x", "/srv/plain/missing", "/srv/alice/roots", "/srv/plain/../file", "/srv",
         "/srv/alice/rootdir/x", "/srv/plain/deep/er/x", "/srv/plain/up/deep/x", "/srv/abs/deep/er/x", "/x"]


def _outcome(fn: object, path: str) -> tuple[str, ...]:
    assert callable(fn)
    try:
        c = fn(path)
    except UnsafePathError as e:
        return ("unsafe", str(e))
    except (OSError, ItemFailed) as e:
        return ("error", str(getattr(e, "errno", e)))
    with c:
        st = os.fstat(c.fd)
        return ("ok", c.path, str(st.st_ino), str(c.st.st_ino), c.rest)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_open_safe_is_a_full_chase(tmp_path: Path, warm: bool) -> None:
    _tree(tmp_path)
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        ctx = Context(Options(root_fd=fd, root=str(tmp_path)), Config())
        for path in PATHS:
            if warm:  # the parent remembered first, as a line before would leave it
                with contextlib.suppress(OSError, UnsafePathError):
                    ctx.safe_dir(path.rpartition("/")[0] or "/").close()
            expected = _outcome(lambda p: chase(p, root_fd=fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW), path)
            got = _outcome(ctx._chase_entry, path)
            assert got == expected, path
        ctx.forget_dirs()
    finally:
        os.close(fd)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_safe_dir_is_a_full_chase(tmp_path: Path, warm: bool) -> None:
    """safe_dir() walking on from a remembered directory above gives what chase(SAFE) gives."""
    _tree(tmp_path)
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    dirs = sorted({p.rpartition("/")[0] or "/" for p in PATHS} | set(PATHS) | {"/"})
    try:
        ctx = Context(Options(root_fd=fd, root=str(tmp_path)), Config())
        if warm:  # every directory above remembered first, in another order
            for path in reversed(dirs):
                with contextlib.suppress(OSError, UnsafePathError):
                    ctx.safe_dir(path).close()
        for path in dirs:
            expected = _outcome(lambda p: chase(p, root_fd=fd, flags=ChaseFlags.SAFE), path)
            assert _outcome(ctx.safe_dir, path) == expected, path
            assert _outcome(ctx.safe_dir, path) == expected, path  # and once remembered
        ctx.forget_dirs()
    finally:
        os.close(fd)


def test_many_directories_within_a_small_fd_limit(tmp_path: Path) -> None:
    """More directories than the fd limit allows open at once: all lines still apply."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    lines = []
    for i in range(300):
        lines += [f"d /srv/d{i} 0750 - - -", f"f /srv/d{i}/config 0640 - - - a", f"z /srv/d{i}/config 0600",
                  f"w /srv/d{i}/config - - - - b"]
    conf = tmp_path / "many.conf"
    conf.write_text("\n".join(lines) + "\n")
    code = "import sys; from freshroot.tmpfiles.commands import main; sys.exit(main())"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    proc = subprocess.run([sys.executable, "-c", code, f"--root={root}", "--create", str(conf)],
                          capture_output=True, text=True, check=False, preexec_fn=limit)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (root / "srv/d299/config").read_text() == "b"
