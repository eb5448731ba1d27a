"""SSH host keys made by the real ssh-keygen (openssh-client, installed by dev.sh), for the
tests of `install --host-keys` and of the host-keys check; the fixtures are in conftest.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def keygen(path: Path, key_type: str, *extra: str) -> Path:
    """One unencrypted key (and its .pub) of ``key_type`` at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([KEYGEN, "-q", "-t", key_type, "-N", "", "-C", "", *extra, "-f", str(path)], check=True)
    return path


def keyset(base: Path) -> Path:
    """ssh-keygen -A's keys (rsa, ecdsa, ed25519, each with its .pub) in ``base``/etc/ssh."""
    (base / "etc" / "ssh").mkdir(parents=True)
    subprocess.run([KEYGEN, "-A", "-f", str(base)], check=True, capture_output=True)
    return base / "etc" / "ssh"
