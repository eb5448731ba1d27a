"""Running systemd's TEST-22-TMPFILES scripts against a systemd-tmpfiles stand-in.

Each script runs in a private mount namespace (``unshare -m``) with fresh tmpfs on /tmp,
/var/tmp and /root, and overlays (upper layer on a private tmpfs) on /etc, /usr and /run, so
whatever it writes -- /etc/tmpfiles.d, /usr/lib/tmpfiles.d, /usr/share/factory -- vanishes
with the namespace. A ``systemd-tmpfiles`` first in PATH runs either the reference binary
(to show the set-up itself is sound) or freshroot-tmpfiles.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Every script runs here: none needs a booted systemd (they use only systemd-tmpfiles and
# coreutils, plus mount and setpriv, which the private namespace allows). The ones that do
# not pass yet, and why -- each is an expected failure that turns into a test failure the
# moment it passes (xfail strict), so this list cannot go stale:
NOT_YET: dict[str, str] = {}
# Scripts whose outcome depends on how fast each systemd-tmpfiles call starts: they check ages
# of a few seconds across several calls. With the reference binary slowed to 0.5 s per call
# they fail too (test_timing_sensitive_scripts_fail_with_a_slow_reference shows it), so a
# failure of one of these is tried again (three attempts) before it counts.
TIMING_SENSITIVE: dict[str, str] = {
    "TEST-22-TMPFILES.12.sh": "ages of 2-8 s across ten calls: each call must start in well under 0.3 s",
}

PROLOGUE = r"""
set -eu
mount --make-rprivate /
ov="$1"; shift
mount -t tmpfs -o mode=0755 freshroot-ov "$ov"
for d in etc usr run root; do
    mkdir -p "$ov/$d/upper" "$ov/$d/work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$ov/$d/upper,workdir=$ov/$d/work" "/$d"
done
# The scripts get empty /tmp and /var/tmp; what lives there on the host (a checkout, its venv,
# the reference binaries) stays reachable below /run/freshroot-host (see visible()).
for d in tmp var/tmp; do
    mkdir -p "/run/freshroot-host/$d"
    mount --rbind "/$d" "/run/freshroot-host/$d"
    mount -t tmpfs -o mode=1777 freshroot-tmp "/$d"
done
mkdir -p /usr/local/freshroot-shim
printf '%s\n' "$SHIM" > /usr/local/freshroot-shim/systemd-tmpfiles
chmod 0755 /usr/local/freshroot-shim/systemd-tmpfiles
export PATH=/usr/local/freshroot-shim:$PATH
cd "$(dirname "$1")"
exec bash "$@"
"""


def visible(path: Path | str) -> str:
    """Where a host path is seen inside the prologue's namespace: below /run/freshroot-host
    when it lives in /tmp or /var/tmp, which the scripts get empty (CI may check out there)."""
    text = str(path)
    for hidden in ("/tmp", "/var/tmp"):
        if text == hidden or text.startswith(hidden + "/"):
            return "/run/freshroot-host" + text
    return text


def shim(kind: str, oracle: Path) -> str:
    ref = shlex.quote(visible(oracle))
    if kind == "systemd":
        return f"#!/bin/sh\nexec {ref} \"$@\""
    if kind == "systemd-slow":  # the reference, started as slowly as a Python program on a busy machine
        return f"#!/bin/sh\nsleep 0.5\nexec {ref} \"$@\""
    return (f"#!/bin/sh\nPYTHONPATH={shlex.quote(visible(SRC))} exec {shlex.quote(visible(sys.executable))} "
            "-c 'import sys; from freshroot.tmpfiles.commands import main; sys.exit(main())' \"$@\"")


def run_script(
    script: Path, kind: str, oracle: Path, scratch: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    ov = scratch / "ov"
    ov.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SHIM": shim(kind, oracle), "LANG": "C.UTF-8",
           "USER": "root", "HOME": "/root", "LOGNAME": "root",
           "SYSTEMD_LOG_LEVEL": "info"}
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", PROLOGUE, "prologue", str(ov), visible(script)],
        env=env, capture_output=True, text=True, timeout=timeout, check=False)
