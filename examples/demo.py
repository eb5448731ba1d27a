"""freshroot's demo: a root wiped at every "boot", and what the declaration keeps.

Everything happens in a temporary directory on tmpfs, inside a private mount namespace this
script enters itself, so nothing on the host changes and nothing is left behind: the mounts
vanish when the script exits. Needs root (mounts).

    ./dev.sh demo        (or: sudo python3 examples/demo.py: Python 3.11 or newer, nothing else)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from freshroot.cli import main as freshroot  # noqa: E402 - after the path set-up above
from freshroot.fs import mount  # noqa: E402

DECLARATION = HERE / "demo" / "freshroot.toml"
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() \
    else ("", "", "", "", "")

# State the "services" write during the first boot: path -> content.
STATE = {
    "/var/lib/app/db.sqlite": "rows that must survive",
    "/var/log/app.log": "boot 1: started\n",
    "/var/lib/private/cache-service/index": "warm cache",
    "/etc/app.conf": "listen = 8080\n",
    "/home/alice/.ssh/known_hosts": "github.com ssh-ed25519 AAAA...\n",
    "/home/alice/.local/share/notes/todo.md": "- try freshroot\n",
    "/home/alice/.bash_history": "freshroot status\n",
    "/etc/ssh/ssh_host_ed25519_key": "-----BEGIN OPENSSH PRIVATE KEY----- (demo)\n",
    # (no /etc/machine-id here: freshroot's machine-id step wrote it, from storage, before any service ran)
    # ...and state nobody declared: lost at the next boot, and the audit says so.
    "/var/lib/forgotten/state.json": '{"important": true}\n',
    "/etc/hand-edited.conf": "tweak = 1\n",
    "/tmp/scratch": "volatile by nature\n",
}


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def title(text: str) -> None:
    say(f"\n{BOLD}== {text}{RESET}")


def os_image(root: Path) -> None:
    """What the distribution's image provides at every boot (read-only in real life)."""
    for d in ("etc/ssh", "etc/freshroot", "usr/bin", "var/lib", "home", "tmp", "persist", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:120:120::/var/lib/app:/usr/sbin/nologin\n"
                                     "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\napp:x:120:\nalice:x:1000:\n")
    (root / "usr/bin/tool").write_text("#!/bin/sh\n")
    for program in ("usr/bin/bash", "usr/bin/env"):  # what the binsh and usrbinenv steps link to
        (root / program).write_text("")
        (root / program).chmod(0o755)
    (root / "home/alice").mkdir(mode=0o700)
    os.chown(root / "home/alice", 1000, 1000)
    shutil.copy(DECLARATION, root / "etc/freshroot/freshroot.toml")  # found as systemd finds configuration


def boot(base: Path, n: int) -> Path:
    """A fresh root: a new tmpfs with the OS image, and the persistent volume at /persist."""
    root = base / "root"
    if root.exists():
        with contextlib.suppress(OSError):
            mount.umount(str(root), mount.MNT.DETACH)  # the reboot: everything on the root is gone
    root.mkdir(exist_ok=True)
    mount.mount("tmpfs", str(root), "tmpfs", data="mode=0755")
    os_image(root)
    entries = len(list(root.rglob("*")))
    mount.mount(str(base / "disk"), str(root / "persist"), None, mount.MS.BIND)
    title(f"boot {n}: a fresh root ({entries} entries from the OS image), /persist mounted")
    return root


def apply(root: Path) -> None:
    run("apply", root=root)


def run(*argv: str, root: Path) -> None:
    """freshroot's own output, as it is: written straight to this terminal (with its colour
    and tree), paths as the root sees them and the root named in the report's head."""
    say(f"{DIM}${RESET} freshroot {' '.join(argv)} --root {root}")
    sys.stdout.flush()
    freshroot([*argv, "--root", str(root)])
    sys.stdout.flush()


def write_state(root: Path) -> None:
    say("services write their state:")
    for path, content in STATE.items():
        p = root / path.lstrip("/")
        if p.is_symlink():  # a root-relative symlink: resolve it inside the root, as the booted system would
            p = root / os.readlink(p).lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "w") as f:  # in place, as a service writing its file does
            f.write(content)
        if path.startswith("/home/alice/"):  # written by alice's programs, so hers
            os.chown(p, 1000, 1000)
        say(f"  {DIM}wrote{RESET} {path}")


def survived(root: Path) -> None:
    title("what survived the reboot")
    kept = lost = 0
    for path, content in STATE.items():
        p = root / path.lstrip("/")
        if p.is_symlink():
            p = root / os.readlink(p).lstrip("/")
        ok = p.exists() and p.read_text() == content
        kept, lost = kept + ok, lost + (not ok)
        mark = f"{GREEN}kept{RESET}" if ok else f"{RED}gone{RESET}"
        say(f"  {mark}  {path}")
    say(f"{kept} kept, {lost} gone (the gone ones were never declared)")


def demo() -> None:
    with tempfile.TemporaryDirectory(prefix="freshroot-demo-") as tmp:
        base = Path(tmp)
        mount.mount("tmpfs", str(base), "tmpfs", data="mode=0700")
        (base / "disk").mkdir()  # the persistent volume, kept across boots
        root = boot(base, 1)
        apply(root)
        write_state(root)
        title("boot 1, later: apply again (picks up what was written meanwhile)")
        apply(root)
        run("status", root=root)
        root = boot(base, 2)
        apply(root)
        survived(root)
        title("what the audit sees on this root (lost at the next boot unless declared)")
        write_state_extra(root)
        run("audit", "--sizes", root=root)
        title("undo: everything freshroot made on this root, removed (storage keeps the data)")
        run("undo", root=root)
        mount.umount(str(root), mount.MNT.DETACH)
        mount.umount(str(base), mount.MNT.DETACH)


def write_state_extra(root: Path) -> None:
    (root / "var/lib/forgotten").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/forgotten/state.json").write_text('{"important": true}\n')
    (root / "etc/hand-edited.conf").write_text("tweak = 1\n")
    # A service removed from the declaration long ago: its state is still in storage.
    (root / "persist/var/lib/old-service").mkdir(parents=True, exist_ok=True)
    (root / "persist/var/lib/old-service/data.db").write_text("x" * 4096)


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("demo.py: needs root (it mounts tmpfs and bind mounts, in a private mount namespace)\n")
        return 1
    mount.unshare_mounts()  # from here, no mount is visible to the host, and all vanish at exit
    demo()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
