"""--image=PATH: the same configuration applied to a disk image by freshroot-tmpfiles (through
systemd-dissect) and by systemd-tmpfiles 262 (its own dissection) gives the same file system.

The images are read back with debugfs, without mounting them on the host."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.oracle]

CONFIG = [
    "d /srv/app 0750 - - -",
    "f /srv/app/config 0640 - - - key=value",
    "L /srv/link - - - - /srv/app/config",
    "D /var/tmp/scratch 1777 - - -",
    "w /etc/os-release - - - - ID=rewritten",
]
PATHS = ["/srv/app", "/srv/app/config", "/srv/link", "/var/tmp/scratch", "/etc/os-release"]


def _image(path: Path, tree: Path) -> Path:
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=test\n")
    subprocess.run(["truncate", "-s", "32M", str(path)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-d", str(tree), str(path)], check=True)
    return path


def _facts(image: Path) -> dict[str, tuple[str, ...]]:
    out = {}
    for path in PATHS:
        stat = subprocess.run(["debugfs", "-R", f"stat {path}", str(image)], capture_output=True, text=True,
                              check=False).stdout
        kept = tuple(line.split("Flags")[0].split("Generation")[0].strip() for line in stat.splitlines()
                     if line.startswith(("Inode:", "User:", "Fast link dest:")))
        content = subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True, text=True,
                                 check=False).stdout if "regular" in stat else ""
        # The inode number differs with creation order; everything else must not.
        out[path] = (*(k.split("Type:", 1)[-1] for k in kept), content)
    return out


@pytest.mark.skipif(shutil.which("systemd-dissect") is None, reason="needs systemd-dissect (systemd-container)")
def test_image_gives_the_same_file_system_as_systemd(tmp_path: Path, oracles: Path) -> None:
    ours = _image(tmp_path / "ours.raw", tmp_path / "tree1")
    theirs = _image(tmp_path / "theirs.raw", tmp_path / "tree2")
    done = subprocess.run([sys.executable, "-m", "freshroot", "tmpfiles", f"--image={ours}", "--create",
                           "--inline", *CONFIG], capture_output=True, text=True, check=False)
    reference = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--image={theirs}", "--create",
                                "--inline", *CONFIG], capture_output=True, text=True, check=False)
    assert (done.returncode, reference.returncode) == (0, 0), (done.stderr, reference.stderr)
    facts = _facts(ours)
    assert facts == _facts(theirs)
    assert "0750" in " ".join(facts["/srv/app"])  # the comparison saw real entries
    assert facts["/etc/os-release"][-1] == "ID=rewritten"


def test_image_errors_as_systemd(tmp_path: Path) -> None:
    missing = tmp_path / "missing.raw"
    done = subprocess.run([sys.executable, "-m", "freshroot", "tmpfiles", f"--image={missing}", "--create",
                           "--inline", "d /x"], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert f"Failed to set up loopback device for {missing}: No such file or directory" in done.stderr
    both = subprocess.run([sys.executable, "-m", "freshroot", "tmpfiles", f"--image={missing}", "--root=/tmp",
                           "--create", "--inline", "d /x"], capture_output=True, text=True, check=False)
    assert both.returncode == 1
    assert "either --root= or --image=" in both.stderr
