"""``freshroot install``, ``roots`` and ``rescue`` on a real btrfs file system, and the
``root`` step of ``apply``.

Each btrfs case runs freshroot as a command inside `unshare --mount` with a sparse btrfs
image loop-mounted there (the mount and its loop device go with the namespace); freshroot
mounts the top level itself, in a namespace of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.config.parse import parse_text
from freshroot.errors import OperationError
from freshroot.fs import ops
from freshroot.plan.action import Context
from freshroot.root.initrd import SCRIPT
from freshroot.root.model import conf_text, parse_root
from freshroot.root.setup import CONF, WriteFile, root_steps

SRC = Path(__file__).resolve().parents[2] / "src"
pytestmark = pytest.mark.root
needs_btrfs = pytest.mark.skipif(any(shutil.which(t) is None for t in ("mkfs.btrfs", "btrfs", "unshare", "ldd")),
                                 reason="needs btrfs-progs and unshare")

DECLARATION = """\
[root]
wipe = "btrfs"
keep = 2

[persist."/persist"]
directories = ["/var/lib/kept"]
"""
FSTAB = "/dev/vda / btrfs subvol=root 0 0\nLABEL=persist /persist ext4 defaults 0 2\n"

# An old root: a directory with a file, a symlink to a root-only file, and a user's home whose
# symlink leads to root's files.
OLD_ROOT = """
old=m/old_roots/$1
btrfs -q subvolume create "$old"
mkdir -p "$old/var/lib/app/sub" "$old/home/alice" "$old/root"
echo "$2" > "$old/var/lib/app/data"; echo deep > "$old/var/lib/app/sub/f"
chown -R 1000:1000 "$old/var/lib/app"
ln -s /etc/shadow "$old/var/lib/link"
chown 1000:1000 "$old/home/alice"; echo secret > "$old/root/secret"; ln -s /root "$old/home/alice/d"
chown -h 1000:1000 "$old/home/alice/d"
"""


def in_btrfs(tmp_path: Path, script: str, *, fstab: str = FSTAB, declaration: str = DECLARATION) -> str:
    """Run ``script`` (bash) with m/ the top level of a fresh btrfs, m/root a subvolume holding
    the declaration and fstab; $FR runs freshroot from this tree. Its stdout."""
    (tmp_path / "decl.toml").write_text(declaration)
    (tmp_path / "fstab").write_text(fstab)
    subprocess.run(["truncate", "-s", "200M", str(tmp_path / "img")], check=True)
    subprocess.run(["mkfs.btrfs", "-q", "-f", str(tmp_path / "img")], check=True, capture_output=True)
    setup = (f'set -eu\ncd "{tmp_path}"\nmkdir -p m\nmount -o loop img m\nold_root() {{ {OLD_ROOT} }}\n'
             "btrfs -q subvolume create m/root\nmkdir -p m/root/etc/freshroot m/old_roots\n"
             "cp fstab m/root/etc/fstab\ncp decl.toml m/root/etc/freshroot/freshroot.toml\n"
             f'FR="{sys.executable} -m freshroot"\n')
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", setup + script],
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@needs_btrfs
def test_roots_lists_the_kept_roots_oldest_first(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, "old_root 2026-01-02T00:00:00 two\nold_root 2026-01-01T00:00:00 one\n"
                             "btrfs -q subvolume create m/old_roots/2026-01-01T00:00:00/var/lib/docker\n"
                             "head -c 300000 /dev/urandom > m/old_roots/2026-01-01T00:00:00/var/lib/docker/big\n"
                             "$FR roots --root m/root --json\necho ===\n$FR roots --root m/root\n")
    document, text = out.split("===\n")
    roots = json.loads(document)
    assert [r["name"] for r in roots["roots"]] == ["2026-01-01T00:00:00", "2026-01-02T00:00:00"]
    assert roots["roots"][0]["size"] > 300000 > roots["roots"][1]["size"]  # nested subvolumes count
    assert roots["blank_present"] is False
    assert "blank blank (MISSING: the initrd keeps the root instead of wiping it)" in text
    assert "keeping the newest 2 in old_roots/" in text
    assert "2026-01-01T00:00:00  " in text


@needs_btrfs
def test_rescue_copies_from_the_newest_old_root_and_prints_the_declaration(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, "old_root 2026-01-01T00:00:00 one\nold_root 2026-01-02T00:00:00 two\n"
                             "$FR rescue /var/lib/app --root m/root\n"
                             "stat -c '%u %g %n' m/root/var/lib/app m/root/var/lib/app/data m/root/var/lib/app/sub/f\n"
                             "cat m/root/var/lib/app/data\n")
    assert "rescued /var/lib/app from the old root 2026-01-02T00:00:00" in out
    assert '[persist."/persist"]\ndirectories = ["/var/lib/app"]\n' in out
    assert "1000 1000 m/root/var/lib/app\n1000 1000 m/root/var/lib/app/data\n1000 1000 m/root/var/lib/app/sub/f\n" \
        in out
    assert out.endswith("two\n")


@needs_btrfs
def test_rescue_never_overwrites_without_force_and_keeps_what_force_replaces(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, "old_root 2026-01-01T00:00:00 one\nold_root 2026-01-02T00:00:00 two\n"
                             "mkdir -p m/root/var/lib/app && echo current > m/root/var/lib/app/data\n"
                             "$FR rescue /var/lib/app --root m/root 2>&1 && exit 9 || echo rc=$?\n"
                             "cat m/root/var/lib/app/data\n"
                             "$FR rescue /var/lib/app/data --from 2026-01-01 --force --root m/root\n"
                             "cat m/root/var/lib/app/data m/root/var/lib/app/data~freshroot-rescue\n"
                             "$FR rescue /var/lib/app/data --from 2026-01-01 --force --root m/root 2>&1 || echo rc=$?\n"
                             "$FR rescue /var/lib/app/data --from 2026 --root m/root 2>&1 || echo rc=$?\n")
    assert "/var/lib/app exists in the root: not replaced" in out
    assert "rc=73\ncurrent\n" in out
    assert "moved /var/lib/app/data aside to /var/lib/app/data~freshroot-rescue" in out
    assert '[persist."/persist"]\nfiles = ["/var/lib/app/data"]\n' in out
    assert "one\ncurrent\n" in out
    assert "data~freshroot-rescue exists: remove it first" in out
    assert "--from 2026: 2 old roots match; the old roots are: 2026-01-01T00:00:00, 2026-01-02T00:00:00" in out
    assert out.endswith("rc=65\n")  # UsageError: a bad argument


@needs_btrfs
def test_rescue_copies_a_symlink_as_a_symlink_and_refuses_a_users_symlink(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, "old_root 2026-01-01T00:00:00 one\n"
                             "$FR rescue /var/lib/link --root m/root\nreadlink m/root/var/lib/link\n"
                             "$FR rescue /home/alice/d/secret --root m/root 2>&1 || echo rc=$?\n"
                             "test -e m/root/root/secret || echo not-copied\n"
                             "$FR rescue /nothing/here --root m/root 2>&1 || echo rc=$?\n")
    assert "rescued /var/lib/link" in out
    assert "\n/etc/shadow\n" in out  # the link, not what it points to
    assert "refusing" in out  # fs.chase SAFE: alice's symlink to root's files is not followed
    assert "not-copied" in out
    assert "/nothing/here is not in the old root 2026-01-01T00:00:00\nrc=73" in out
    assert "rescue into " in out  # the root named once, by the head line (docs/activation.md)


def _fake_root(tmp_path: Path) -> str:
    """Lines that give m/root a /bin/sh (the host's dash and its libraries) and an
    update-initramfs that leaves a mark in /boot, so `chroot m/root update-initramfs` runs."""
    libs = subprocess.run(["ldd", "/bin/dash"], capture_output=True, text=True, check=True).stdout
    paths = [p for p in libs.split() if p.startswith("/")]
    lines = ["mkdir -p m/root/bin m/root/usr/sbin m/root/boot m/root/proc m/root/sys m/root/dev",
             "cp /bin/dash m/root/bin/sh"]
    lines += [f'mkdir -p "m/root{os.path.dirname(p)}" && cp -L "{p}" "m/root{p}"' for p in paths]
    lines += ["printf '#!/bin/sh\\necho \"$@\" > /boot/initrd-rebuilt\\n' > m/root/usr/sbin/update-initramfs",
              "chmod 755 m/root/usr/sbin/update-initramfs"]
    return "\n".join(lines) + "\n"


@needs_btrfs
def test_install_writes_the_initrd_files_rebuilds_the_initrd_and_takes_the_blank(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, _fake_root(tmp_path) +
                   "$FR install --root m/root\necho ===\n"
                   "btrfs property get -ts m/blank ro; cat m/blank/boot/initrd-rebuilt\n"
                   "cat m/root/etc/freshroot/root-wipe.conf\n"
                   "stat -c '%a %n' m/root/etc/initramfs-tools/hooks/freshroot-root "
                   "m/root/etc/initramfs-tools/scripts/local-premount/freshroot-root\n"
                   "rm m/root/boot/initrd-rebuilt\necho ===\n$FR install --root m/root\n"
                   "test -e m/root/boot/initrd-rebuilt || echo not-rebuilt-again\n")
    first, look, second = out.split("===\n")
    assert "rebuilt (update-initramfs -u in a chroot)" in first
    assert "blank snapshot blank made from root (read-only)" in first
    assert look.startswith("ro=true\n-u\n")  # the blank holds the rebuilt initrd
    assert "wipe=btrfs\n" in look
    assert "keep-count=2\n" in look
    assert "storage=/persist\n" in look
    assert "755 m/root/etc/initramfs-tools/hooks/freshroot-root\n" in look
    assert "kept the blank snapshot blank" in second
    assert "not-rebuilt-again" in second  # nothing changed: no rebuild


@needs_btrfs
def test_install_refuses_storage_on_the_wiped_root_and_changes_nothing(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, _fake_root(tmp_path) +
                   "$FR install --root m/root 2>&1 || echo rc=$?\n"
                   "ls m/root/etc/freshroot m/root/usr/lib 2>&1 || true; btrfs subvolume list m\n",
                   fstab="/dev/vda / btrfs subvol=root 0 0\n")
    assert "rc=65" in out
    assert ('freshroot.toml:2: [root] wipe = "btrfs" would wipe the storage /persist with the root: it is not a file '
            "system of its own in /etc/fstab") in out  # the root's own /etc/fstab (docs/activation.md)
    assert "freshroot.toml\n" in out  # only the declaration that was there
    assert "root-wipe.conf" not in out
    assert "systemd" not in out  # no generator
    assert "blank" not in out


@needs_btrfs
def test_install_refuses_a_root_that_is_not_the_declared_subvolume(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, "$FR install --root m/root 2>&1 || echo rc=$?\n",
                   declaration=DECLARATION.replace('keep = 2', 'keep = 2\nsubvolume = "@"'))
    assert "is the btrfs subvolume 'root', but [root] subvolume is '@': set subvolume = 'root'" in out
    assert "rc=73" in out


def test_install_refuses_a_root_that_is_not_btrfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/fstab").write_text(FSTAB)
    (tmp_path / "decl.toml").write_text(DECLARATION)
    proc = subprocess.run([sys.executable, "-m", "freshroot", "install", "--root", str(root), "--config",
                           str(tmp_path / "decl.toml")], env={**os.environ, "PYTHONPATH": str(SRC)},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 73, proc.stderr
    assert 'not btrfs: [root] wipe = "btrfs" needs a btrfs root subvolume' in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(root / "etc")) == ["fstab"]  # refused before any change


def _root_step_actions(root: Path, declaration: str) -> list[WriteFile]:
    table = parse_text(declaration, "decl.toml").table()
    (step,) = root_steps(table)
    fd = ops.open_root(str(root))
    try:
        return list(step.planner(Context(fd, str(root))))  # type: ignore[arg-type]
    finally:
        os.close(fd)


def test_apply_step_keeps_the_settings_the_initrd_reads(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/fstab").write_text(FSTAB)
    with pytest.raises(OperationError, match=r"does not wipe the root yet: run `freshroot install`"):
        _root_step_actions(tmp_path, DECLARATION)
    script = tmp_path / SCRIPT.lstrip("/")
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    (action,) = _root_step_actions(tmp_path, DECLARATION)
    assert action.path == CONF
    conf = conf_text(parse_root(parse_text(DECLARATION, "d").table()), ["/persist"])
    assert action.data == conf.encode()
    fd = ops.open_root(str(tmp_path))
    try:
        action.apply(Context(fd, str(tmp_path)))
    finally:
        os.close(fd)
    assert _root_step_actions(tmp_path, DECLARATION) == []  # up to date: nothing to do
    changed = _root_step_actions(tmp_path, DECLARATION.replace("keep = 2", 'keep = "3d"'))
    assert [a.path for a in changed] == [CONF]
    assert b"keep-seconds=259200\n" in changed[0].data


def test_no_root_section_adds_no_step() -> None:
    assert root_steps(parse_text("[persist]\n", "d").table()) == []


def test_rescue_snippet_reads_back_as_the_path() -> None:
    import tomllib

    from freshroot.root.handlers import _snippet

    path = '/var/lib/a "b"\\c\tü'
    data = tomllib.loads(_snippet(['/per "sist"'], path, is_dir=False))
    assert data == {"persist": {'/per "sist"': {"files": [path]}}}
    assert tomllib.loads(_snippet([], "/x", is_dir=True)) == {"persist": {"/persist": {"directories": ["/x"]}}}
