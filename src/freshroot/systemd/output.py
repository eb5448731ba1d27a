"""Writing units into a directory systemd reads: a generator's output directory
(/run/systemd/generator, or the early/late ones) or `render --units DIR`.

A unit is written atomically (temporary file and rename), so systemd never reads half a
unit. Dependencies a generator adds are symlinks ``TARGET.wants/UNIT -> ../UNIT`` (or
``.requires``, ``.upholds``), as systemd's own generators make them; drop-ins go to
``UNIT.d/NAME.conf``. Everything goes through the fs layer, relative to the directory's fd.
"""

from __future__ import annotations

import os
from enum import StrEnum

from freshroot.fs import ops
from freshroot.fs.atomic import replace_at
from freshroot.systemd import manifest
from freshroot.systemd.unit import UnitFile


class Dependency(StrEnum):
    WANTS = "wants"
    REQUIRES = "requires"
    UPHOLDS = "upholds"


class UnitDirectory:
    """Units written into the directory ``dir_fd`` (an O_PATH or real directory fd, not owned).

    ``durable`` fsyncs what is written: not needed for a generator's output on /run (a tmpfs,
    rebuilt at every boot), wanted for units written onto a disk."""

    def __init__(self, dir_fd: int, *, durable: bool = False) -> None:
        self.dir_fd = dir_fd
        self.durable = durable
        self.written: list[str] = []  # relative paths, in order: what a report or a test lists
        self.marks: dict[str, str] = {}  # relative path -> what was written (systemd.manifest)
        self.removed: list[str] = []  # written by the last render, not by this one: removed
        self.kept: list[str] = []  # the same, but changed since: left in place

    def write(self, unit: UnitFile) -> None:
        data = unit.render().encode()
        replace_at(self.dir_fd, unit.name, data, mode=0o644, durable=self.durable)
        self.written.append(unit.name)
        self.marks[unit.name] = manifest.file_mark(data)

    def _subdir(self, name: str) -> int:
        ops.mkdir_at(self.dir_fd, name, 0o755)
        return ops.open_dir_at(self.dir_fd, name)

    def drop_in(self, unit_name: str, name: str, unit: UnitFile) -> None:
        """``UNIT.d/NAME.conf`` holding ``unit``'s sections (its name is not used)."""
        fd = self._subdir(f"{unit_name}.d")
        data = unit.render().encode()
        try:
            replace_at(fd, f"{name}.conf", data, mode=0o644, durable=self.durable)
        finally:
            os.close(fd)
        self.written.append(f"{unit_name}.d/{name}.conf")
        self.marks[f"{unit_name}.d/{name}.conf"] = manifest.file_mark(data)

    def add_dependency(self, target: str, kind: Dependency, unit_name: str) -> None:
        """``TARGET.KIND/UNIT -> ../UNIT``: ``target`` wants (requires, upholds) ``unit_name``.
        Idempotent: an identical link is left alone; a different file there is an error."""
        fd = self._subdir(f"{target}.{kind}")
        try:
            link = f"../{unit_name}"
            try:
                ops.symlink_at(link, fd, unit_name)
            except FileExistsError:
                if os.readlink(unit_name, dir_fd=fd) != link:
                    raise
        finally:
            os.close(fd)
        self.written.append(f"{target}.{kind}/{unit_name}")
        self.marks[f"{target}.{kind}/{unit_name}"] = manifest.link_mark(f"../{unit_name}")
