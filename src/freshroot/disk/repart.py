"""``[disk]`` as systemd-repart sees it: repart.d files, the per-host seed, the command line,
and its JSON answer.

systemd-repart derives every partition UUID (and the disk's) from ``--seed``: the same seed
on the same definitions gives the same UUIDs, so a second run finds its partitions and has
nothing to do, while two hosts with their own seeds never share a PARTUUID (fstab and the
kernel command line name partitions by it). The seed is declared (``[disk] seed``) or made
from the host name with a fixed UUIDv5 namespace, so it is stable across runs for a host.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from freshroot.disk.model import DiskLayout, PartitionDecl
from freshroot.errors import OperationError

# The namespace of seeds derived from host names (uuid5(SEED_NAMESPACE, hostname)); fixed
# forever, or every host's partition UUIDs would change under it.
SEED_NAMESPACE = uuid.UUID("6b1f3c52-8f0e-4c4e-9a53-2b7d6f1e0a17")
# systemd-repart's own mkfs options, by file system: labels come from Label=.
_REPART_FORMAT = {"vfat": "vfat", "ext4": "ext4", "btrfs": "btrfs", "xfs": "xfs", "swap": "swap"}


def seed_for(layout: DiskLayout, hostname: str) -> str:
    return layout.seed or str(uuid.uuid5(SEED_NAMESPACE, hostname))


def file_name(index: int, p: PartitionDecl) -> str:
    """repart.d reads its files in name order: the declared order, made a number."""
    return f"{(index + 1) * 10:02d}-{p.name}.conf"


def definition(p: PartitionDecl) -> str:
    """One repart.d file (repart.d(5)) for a declared partition."""
    lines = ["# Written by freshroot from [disk]; see docs/remote-install.md.", "[Partition]",
             f"Type={p.type}", f"Label={p.label}"]
    if p.format is not None:
        lines.append(f"Format={_REPART_FORMAT[p.format]}")
    if p.size_min is not None:
        lines.append(f"SizeMinBytes={p.size_min}")
    if p.size_max is not None:
        lines.append(f"SizeMaxBytes={p.size_max}")
    if p.weight is not None:
        lines.append(f"Weight={p.weight}")
    return "\n".join(lines) + "\n"


def definitions(layout: DiskLayout) -> dict[str, str]:
    return {file_name(i, p): definition(p) for i, p in enumerate(layout.partitions)}


def write_definitions(layout: DiskLayout, directory: str) -> None:
    for name, text in definitions(layout).items():
        fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def argv(tool: str, layout: DiskLayout, directory: str, seed: str, device: str, *, dry_run: bool) -> list[str]:
    return [tool, f"--definitions={directory}", f"--dry-run={'yes' if dry_run else 'no'}",
            f"--empty={layout.empty}", "--json=pretty", "--no-pager", f"--seed={seed}", device]


@dataclass(frozen=True, slots=True)
class Planned:
    """One partition as systemd-repart plans or made it."""

    name: str  # the declared partition's name
    type: str
    label: str
    uuid: str  # PARTUUID
    node: str  # /dev/sda2: the kernel's name for it now
    offset: int
    size: int
    old_size: int
    activity: str  # create, resize, unchanged...


def parse_output(stdout: str, layout: DiskLayout) -> list[Planned]:
    """systemd-repart's --json answer, each entry matched to its declared partition by file."""
    try:
        data: Any = json.loads(stdout)
    except ValueError as e:
        raise OperationError(f"systemd-repart printed no JSON: {e}") from None
    files = {file_name(i, p): p for i, p in enumerate(layout.partitions)}
    out: list[Planned] = []
    for entry in data if isinstance(data, list) else []:
        p = files.get(str(entry.get("file", "")))
        if p is None:
            continue  # a partition of the disk no definition matched: repart leaves it alone
        out.append(Planned(p.name, str(entry.get("type")), str(entry.get("label")), str(entry.get("uuid")),
                           str(entry.get("node")), int(entry.get("offset") or 0), int(entry.get("raw_size") or 0),
                           int(entry.get("old_size") or 0), str(entry.get("activity"))))
    missing = [p.name for p in layout.partitions if p.name not in {x.name for x in out}]
    if missing:
        raise OperationError(f"systemd-repart did not plan the declared partitions {', '.join(missing)}")
    return out


def table(planned: Sequence[Planned]) -> str:
    from freshroot.facts.machine import human

    rows = [f"  {p.name:<12} {p.activity:<10} {p.node:<16} {human(p.size):>10}  PARTUUID={p.uuid}  {p.type}"
            for p in planned]
    return "\n".join(rows) + "\n"
