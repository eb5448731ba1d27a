"""After systemd-repart: the new file systems mounted under the mount root (/mnt) as the
installed system will mount them, and the /etc/fstab that says so.

fstab names partitions by PARTUUID, which systemd-repart derived from the host's seed, so
the file is known before any file system is probed and no rescue-system name (sda2) ends up
in it. With ``[root] wipe = "btrfs"`` the root partition gets the root subvolume the initrd
replaces at every boot ([root] subvolume), and the root is mounted from it; declared btrfs
``subvolumes`` are made beside it and mounted too (a storage such as /persist must not be
inside the root subvolume, or the wipe takes it).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from freshroot.disk.model import DiskLayout
from freshroot.disk.repart import Planned
from freshroot.errors import OperationError
from freshroot.hints import command

HEADER = "# Written by freshroot disk apply from [disk] (docs/remote-install.md)."
# What each file system is mounted with when nothing is declared.
_DEFAULT_OPTIONS = {"vfat": ("umask=0077",)}
_PASS = {"ext4": 2, "xfs": 2, "vfat": 2, "btrfs": 0}


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of the new fstab, and a mount under the mount root."""

    node: str  # the partition's device node now (rescue system's name)
    partuuid: str
    point: str  # in the new root: "/", "/boot/efi", "/persist", or "none" for swap
    fstype: str
    options: tuple[str, ...]
    subvolume: str | None = None  # btrfs: mounted from this subvolume

    def fstab_line(self) -> str:
        from freshroot.root.model import fstab_escape

        options = list(self.options)
        if self.subvolume is not None:
            options.insert(0, f"subvol=/{self.subvolume}")
        fs_pass = 1 if self.point == "/" and self.fstype != "btrfs" else _PASS.get(self.fstype, 0)
        return (f"PARTUUID={self.partuuid}\t{fstab_escape(self.point)}\t{self.fstype}\t"
                f"{','.join(options) or 'defaults'}\t0\t{fs_pass}")


def layout_mounts(layout: DiskLayout, planned: Sequence[Planned], root_subvolume: str | None) -> list[Mount]:
    """The mounts of the layout, parents before children (the root first)."""
    by_name = {p.name: p for p in planned}
    out: list[Mount] = []
    for p in layout.partitions:
        made = by_name[p.name]
        if p.format == "swap":
            out.append(Mount(made.node, made.uuid, "none", "swap", p.options or ("defaults",)))
            continue
        if p.format is None:
            continue
        if p.mount is not None:
            options = p.options or _DEFAULT_OPTIONS.get(p.format, ())
            sub = root_subvolume if p.mount == "/" and p.format == "btrfs" else None
            out.append(Mount(made.node, made.uuid, p.mount, p.format, options, sub))
        # A btrfs partition's subvolumes are mounted whether or not its top level is.
        out += [Mount(made.node, made.uuid, point, "btrfs", p.options, name) for name, point in p.subvolumes]
    return sorted(out, key=lambda m: (m.point == "none", m.point.count("/") if m.point != "/" else 0, m.point))


def fstab_text(mounts: Sequence[Mount]) -> str:
    return "\n".join([HEADER, *(m.fstab_line() for m in mounts)]) + "\n"


def subvolumes_to_make(layout: DiskLayout, planned: Sequence[Planned],
                       root_subvolume: str | None) -> dict[str, list[str]]:
    """Partition node -> the btrfs subvolumes it must have (the root's first)."""
    by_name = {p.name: p for p in planned}
    out: dict[str, list[str]] = {}
    for p in layout.partitions:
        names = [root_subvolume] if p.mount == "/" and p.format == "btrfs" and root_subvolume else []
        names += [name for name, _ in p.subvolumes]
        if names:
            out[by_name[p.name].node] = names
    return out


def wait_for_nodes(device: str, nodes: Sequence[str], timeout: float = 10.0) -> None:
    """The partitions' device nodes, once the kernel knows the new table. udev normally makes
    them; where the kernel did not read the table itself (no udev, a kernel without GPT
    parsing), partx adds them through BLKPG."""
    from freshroot.run import run

    if all(os.path.exists(n) for n in nodes):
        return
    settle = [p for p in ("/usr/bin/udevadm", "/bin/udevadm", "/sbin/udevadm") if os.path.exists(p)]
    if settle:
        run([settle[0], "settle", "--timeout=10"], check=False)
    if not all(os.path.exists(n) for n in nodes):
        run(["partx", "--update", device], check=False)
        run(["partx", "--add", device], check=False)  # --update only touches known ones on some versions
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(n) for n in nodes):
        if time.monotonic() > deadline:
            missing = [n for n in nodes if not os.path.exists(n)]
            raise OperationError(f"the new partitions have no device nodes: {', '.join(missing)}",
                                 hint="is udev running? `partx --update DEVICE` makes them by hand")
        time.sleep(0.1)


@contextlib.contextmanager
def top_level(node: str) -> Iterator[str]:
    """The btrfs file system on ``node`` mounted whole (subvolid=5) on a fresh directory."""
    from freshroot.run import run

    where = tempfile.mkdtemp(prefix="freshroot-disk-")
    try:
        run(["mount", "-t", "btrfs", "-o", "subvolid=5", node, where])
        try:
            yield where
        finally:
            run(["umount", where])
    finally:
        os.rmdir(where)


def make_subvolumes(node: str, names: Sequence[str]) -> list[str]:
    """Create the missing ``names`` (paths below the top level) on the btrfs of ``node``."""
    from freshroot.fs import btrfs, ops

    made: list[str] = []
    with top_level(node) as where:
        top = ops.open_root(where)
        try:
            for name in names:
                parent, _, leaf = name.rpartition("/")
                with ops.mkdir_parents(top, "/" + parent, 0o755) as d:
                    try:
                        ops.lstat_at(d.fd, leaf)
                        continue
                    except FileNotFoundError:
                        pass
                    btrfs.make_subvolume(d.fd, leaf)
                    made.append(name)
        finally:
            os.close(top)
    return made


def _mounted(target: str, node: str, subvolume: str | None) -> bool | None:
    """True: ``node`` (and subvolume) is what is mounted on ``target``; None: nothing is;
    False: something else is."""
    from freshroot.fs.mount import mountinfo

    here = [m for m in mountinfo() if m.mount_point == target]
    if not here:
        return None
    m = here[-1]
    st = os.stat(node)
    same_dev = m.dev == st.st_rdev or os.path.realpath(m.source) == os.path.realpath(node)
    return same_dev and (subvolume is None or m.root.strip("/") == subvolume.strip("/"))


def mount_all(mounts: Sequence[Mount], mount_root: str) -> list[str]:
    """Mount everything below ``mount_root`` (the root first); what was done, in words.
    Mounts that are already there are kept; anything else mounted in the way is refused."""
    from freshroot.fs import ops
    from freshroot.run import run

    done: list[str] = []
    for m in mounts:
        if m.point == "none":
            continue
        target = os.path.normpath(mount_root.rstrip("/") + m.point) if m.point != "/" else mount_root
        if m.point != "/":
            root_fd = ops.open_root(mount_root)
            try:
                with ops.mkdir_parents(root_fd, m.point, 0o755):
                    pass
            finally:
                os.close(root_fd)
        state = _mounted(target, m.node, m.subvolume)
        if state is True:
            done.append(f"{target}: already mounted")
            continue
        if state is False:
            raise OperationError(f"{target}: something else is mounted there", hint=f"umount {target}")
        options = [*m.options, *([f"subvol=/{m.subvolume}"] if m.subvolume else [])]
        run(["mount", "-t", m.fstype, *(["-o", ",".join(options)] if options else []), m.node, target])
        done.append(f"mounted {m.node}{' subvolume ' + m.subvolume if m.subvolume else ''} on {target}")
    return done


def write_fstab(mount_root: str, text: str) -> str:
    """``mount_root``/etc/fstab with ``text``; an fstab freshroot did not write is kept."""
    from freshroot.fs import ops
    from freshroot.fs.atomic import replace_at

    root_fd = ops.open_root(mount_root)
    try:
        with ops.mkdir_parents(root_fd, "/etc", 0o755) as d:
            try:
                old = ops.read_at(d.fd, "fstab").decode("utf-8", "replace")
            except FileNotFoundError:
                old = None
            if old == text:
                return f"{mount_root}/etc/fstab: up to date"
            if old is not None and not old.startswith(HEADER) and old.strip():
                raise OperationError(f"{mount_root}/etc/fstab exists and was not written by freshroot: not replacing "
                                     "it", hint=f"move it away, or merge the lines `{command('disk', 'plan')}` prints")
            replace_at(d.fd, "fstab", text.encode(), mode=0o644, uid=0, gid=0)
            return f"wrote {mount_root}/etc/fstab"
    finally:
        os.close(root_fd)
