"""Z (and every recursive adjusting line) over a user's deep tree: iterative, within an fd
budget. Before: "internal error: RecursionError" from recursive_action, one Python frame
and one fd per level."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.fs import ops

pytestmark = pytest.mark.root

DEPTH = 1500


def _walk_to_bottom(top: Path) -> tuple[int, os.stat_result]:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(DEPTH):
        child = ops.open_dir_at(fd, "d")
        os.close(fd)
        fd = child
    return fd, os.stat("f", dir_fd=fd, follow_symlinks=False)


def test_z_over_a_1500_deep_tree_within_256_fds(tmp_path: Path) -> None:
    root = tmp_path / "root"
    home = root / "home/alice"
    home.mkdir(parents=True)
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(DEPTH):
        os.mkdir("d", 0o700, dir_fd=fd)
        child = ops.open_dir_at(fd, "d")
        os.close(fd)
        fd = child
    ops.write_all(leaf := ops.create_at(fd, "f", 0o600), b"x")
    os.close(leaf)
    os.close(fd)
    conf = tmp_path / "z.conf"
    conf.write_text("Z /home/alice 0750 1000 1000 -\n")
    code = "import sys; from freshroot.tmpfiles.commands import main; sys.exit(main())"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    try:
        proc = subprocess.run([sys.executable, "-c", code, f"--root={root}", "--create", str(conf)],
                              capture_output=True, text=True, check=False, preexec_fn=limit)
        assert (proc.returncode, proc.stderr) == (0, "")
        bottom, st = _walk_to_bottom(home)
        os.close(bottom)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 1000, 1000)
    finally:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        ops.remove_tree_at(top, "home")
        os.close(top)
