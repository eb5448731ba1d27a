"""``freshroot disk plan`` and ``freshroot disk apply``.

Both read the declaration (``--config``: the machine being installed is not the one whose
/etc/freshroot is read), check the disk (freshroot.disk.device), write the repart.d files to
a private temporary directory and run systemd-repart with the host's seed: ``plan`` as a dry
run, ``apply`` as a dry run first (nothing is written when the plan fails) and then for real,
followed by the mounts and fstab (freshroot.disk.mounts).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from typing import Any

from freshroot.config.table import Table
from freshroot.disk import device as devices
from freshroot.disk import mounts as mounting
from freshroot.disk import repart
from freshroot.disk.model import DiskLayout, parse_disk
from freshroot.errors import ConfigError, OperationError, UsageError
from freshroot.facts.blockdev import Disk
from freshroot.hints import command
from freshroot.output import print_json

TOOL = "systemd-repart"


def _declaration(args: argparse.Namespace) -> Table:
    from freshroot.compose import load_checked_unowned

    return load_checked_unowned(args.config)


def _root_subvolume(table: Table, layout: DiskLayout) -> str | None:
    """The btrfs subvolume the root is mounted from: [root]'s with wipe = "btrfs"."""
    from freshroot.disk.model import root_subvolume

    return root_subvolume(table, layout)


def _storages_checked(table: Table, layout: DiskLayout) -> None:
    """With a wiped root, each storage of [persist] must be a file system of its own."""
    from freshroot.root.model import parse_root

    if "persist" not in table or parse_root(table).wipe == "none":
        return
    from freshroot.persist.parse import parse

    points = set(layout.mount_points()) - {"/"}
    for storage in parse(table, None, skip=lambda error: None).storages:
        if storage.path not in points:
            raise ConfigError(f"[persist] storage {storage.path} is no partition or subvolume of [disk]: the root "
                              "wipe would take it", location=table.location("disk"),
                              hint=f'mount a partition there, or add it to a btrfs partition\'s subvolumes '
                                   f'(subvolumes = {{ {storage.path.strip("/").replace("/", "-")} = '
                                   f'"{storage.path}" }})')


def _prepare(args: argparse.Namespace) -> tuple[Table, DiskLayout, str, Disk, str, str | None]:
    table = _declaration(args)
    layout = parse_disk(table)
    if layout is None:
        raise UsageError("the declaration has no [disk] section: nothing to partition",
                         hint="docs/remote-install.md has a [disk] to start from")
    if not layout.partitions:
        raise ConfigError("[disk] declares no partitions: add [disk.partitions.<name>] tables",
                          location=table.location("disk"), hint="docs/remote-install.md has a layout to start from")
    root_subvolume = _root_subvolume(table, layout)
    _storages_checked(table, layout)
    device = args.device or layout.device
    if device is None:
        raise UsageError("which disk? give --device /dev/disk/by-id/NAME or declare [disk] device",
                         hint=f"`{command('facts')}` lists each disk with its by-id names")
    if args.device and layout.device and os.path.basename(args.device) != os.path.basename(layout.device):
        raise UsageError(f"--device {args.device} is not the declared [disk] device {layout.device}")
    disk = devices.resolve(device)
    devices.check(disk, device, layout, mount_root=args.mount_root)
    seed = repart.seed_for(layout, args.hostname or os.uname().nodename)
    return table, layout, device, disk, seed, root_subvolume


def _tool() -> str:
    from freshroot.facts.machine import TOOL_PATH

    found = shutil.which(TOOL, path=f"{os.environ.get('PATH', '')}:{TOOL_PATH}")
    if found is None:
        raise OperationError(f"{TOOL} is not installed", hint="Debian 12: apt install systemd-repart (or systemd)")
    return found


def _run_repart(layout: DiskLayout, disk: Disk, seed: str, *, dry_run: bool) -> list[repart.Planned]:
    from freshroot.run import run

    with tempfile.TemporaryDirectory(prefix="freshroot-repart-") as directory:
        repart.write_definitions(layout, directory)
        # The kernel's name, resolved from the checked by-id link once: the link cannot be
        # pointed elsewhere between the check and the run.
        result = run(repart.argv(_tool(), layout, directory, seed, disk.path, dry_run=dry_run))
    return repart.parse_output(result.stdout, layout)


def _document(device: str, disk: Disk, seed: str, planned: list[repart.Planned],
              fstab: str, done: list[str] | None) -> dict[str, Any]:
    return {"device": device, "node": disk.path, "serial": disk.serial, "size": disk.size,
            "seed": seed, "partitions": [asdict(p) for p in planned],
            "changes": sum(p.activity != "unchanged" for p in planned), "fstab": fstab,
            **({"done": done} if done is not None else {})}


def plan(args: argparse.Namespace) -> int:
    _, layout, device, disk, seed, root_subvolume = _prepare(args)
    planned = _run_repart(layout, disk, seed, dry_run=True)
    fstab = mounting.fstab_text(mounting.layout_mounts(layout, planned, root_subvolume))
    if args.json:
        print_json(_document(device, disk, seed, planned, fstab, None))
        return 0
    changes = sum(p.activity != "unchanged" for p in planned)
    sys.stdout.write(f"{device} ({disk.path}, seed {seed}): "
                     f"{f'{changes} partitions to change' if changes else 'no change'}\n")
    sys.stdout.write(repart.table(planned))
    sys.stdout.write(f"fstab of {args.mount_root}:\n{fstab}")
    return 0


def apply(args: argparse.Namespace) -> int:
    _, layout, device, disk, seed, root_subvolume = _prepare(args)
    if not os.path.isdir(args.mount_root):
        raise UsageError(f"--mount-root {args.mount_root}: no such directory")
    planned = _run_repart(layout, disk, seed, dry_run=True)  # a plan that fails writes nothing
    if any(p.activity != "unchanged" for p in planned):
        if disk.in_use():
            raise OperationError(f"{device} ({disk.path}) is mounted under {args.mount_root} and its partitions "
                                 "differ from [disk]: not repartitioning a disk in use",
                                 hint=f"umount -R {args.mount_root} first")
        planned = _run_repart(layout, disk, seed, dry_run=False)
    mounting.wait_for_nodes(disk.path, [p.node for p in planned])
    done = [f"{p.name}: {p.activity} {p.node} PARTUUID={p.uuid}" for p in planned]
    for node, names in mounting.subvolumes_to_make(layout, planned, root_subvolume).items():
        done += [f"made btrfs subvolume {name} on {node}" for name in mounting.make_subvolumes(node, names)]
    mounts = mounting.layout_mounts(layout, planned, root_subvolume)
    done += mounting.mount_all(mounts, os.path.realpath(args.mount_root))
    fstab = mounting.fstab_text(mounts)
    done.append(mounting.write_fstab(os.path.realpath(args.mount_root), fstab))
    if args.json:
        print_json(_document(device, disk, seed, planned, fstab, done))
    else:
        sys.stdout.write("".join(f"{line}\n" for line in done))
    return 0
