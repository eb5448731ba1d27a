"""A scratch root with accounts and a declaration, and the units rendered from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PASSWD = ("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
          "app:x:990:991::/nonexistent:/usr/sbin/nologin\n")
GROUP = "root:x:0:\nalice:x:1000:\napp:x:991:\n"

RICH = """\
[persist."/persist"]
hide-mounts = true
allow-trash = true
directories = [
  "/var/lib/app-data",
  { path = "/var/log", early = true },
  { path = "/srv/data dir-é", user = "app", group = "app", mode = "0750", options = ["ro"] },
  { path = "/var/lib/private/secret", user = "app", mode = "0700" },
]
files = [
  "/etc/machine-id",
  { path = "/etc/ssh/ssh_host_ed25519_key", how = "symlink", mode = "0600" },
  { path = "/etc/adjtime", how = "bind" },
]
users.alice.directories = [".ssh", "Documents"]
users.alice.files = [".bashrc"]

[persist."/data"]
degraded = true
require-mount = true
directories = ["/var/cache/big-cache"]
files = ["/etc/data-only.conf"]

[tmpfiles]
engine = "systemd"
rules = ["d /var/lib/fresh 0755 root root -"]
"""


def make_root(path: Path, declaration: str = RICH) -> Path:
    (path / "etc" / "freshroot").mkdir(parents=True)
    (path / "etc" / "passwd").write_text(PASSWD)
    (path / "etc" / "group").write_text(GROUP)
    (path / "etc" / "freshroot" / "freshroot.toml").write_text(declaration)
    return path


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("SYSTEMD_IN_INITRD", "SYSTEMD_SCOPE")}
    out["PYTHONPATH"] = str(REPO / "src")
    out.update(extra)
    return out


def as_service(argv: list[str], log: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as a unit with StandardOutput=journal would: stdout and stderr one stream
    (the file ``log``), which JOURNAL_STREAM names by device and inode. The output is in
    ``stdout``."""
    with open(log, "w+") as stream:
        st = os.fstat(stream.fileno())
        proc = subprocess.run(argv, env=env(JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}", **extra), stdout=stream,
                              stderr=subprocess.STDOUT, check=False)
        stream.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, stream.read(), "")


def freshroot(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "freshroot", *args], env=env(**extra),
                          capture_output=True, text=True, check=False)


def generator(root: Path, out: Path, *, initrd: bool = False) -> subprocess.CompletedProcess[str]:
    """The generator as systemd runs it: three output directories, SYSTEMD_IN_INITRD."""
    dirs = [out / "normal", out / "early", out / "late"]
    for d in dirs:
        d.mkdir(parents=True)
    code = "import sys; from freshroot.systemd.generator import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, dirs)],
        env=env(SYSTEMD_IN_INITRD="1" if initrd else "0", FRESHROOT_GENERATOR_ROOT=str(root)),
        capture_output=True, text=True, check=False,
    )


def tree(directory: Path) -> dict[str, str]:
    """Every file (its text) and symlink ("-> target") below ``directory``."""
    out = {}
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_text()
    return out


def unit(directory: Path, name: str) -> dict[str, list[str]]:
    """``Section.Key`` -> values of a unit file."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in (directory / name).read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(f"{section}.{key}", []).append(value)
    return out
