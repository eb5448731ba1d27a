"""``[portable.<name>]``: the declaration of a portable service image, parsed and checked.

Everything that can be wrong with a declaration is found here, before anything is staged
or built: unknown keys, bad types, unit names systemd would not attach, a compression the
chosen format cannot use. Every error names the file and line of the offending value.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from enum import StrEnum

from freshroot.config import fields
from freshroot.config.table import Table
from freshroot.errors import ConfigError, Location
from freshroot.image.units import unit_problem


class ImageFormat(StrEnum):
    SQUASHFS = "squashfs"
    EROFS = "erofs"


# Compressors each builder accepts ("none" means store uncompressed). erofs-utils 1.5, as
# in Debian 12, only has lz4 and lz4hc; newer releases add lzma, deflate and zstd.
COMPRESSORS: dict[ImageFormat, tuple[str, ...]] = {
    ImageFormat.SQUASHFS: ("xz", "gzip", "lzo", "lz4", "zstd", "lzma", "none"),
    ImageFormat.EROFS: ("lz4hc", "lz4", "lzma", "deflate", "zstd", "none"),
}
# nixpkgs' portableService defaults: xz (with a 100% dictionary) in 1M blocks.
DEFAULT_COMPRESSION = {ImageFormat.SQUASHFS: "xz", ImageFormat.EROFS: "lz4hc"}
DEFAULT_BLOCK_SIZE = 1 << 20

# os-release keys a declaration may set (os-release(5) plus the portable ones).
OS_RELEASE_KEYS = frozenset({
    "PORTABLE_ID", "PORTABLE_PRETTY_NAME", "PORTABLE_PREFIXES", "HOME_URL", "ID", "VERSION_ID",
    "PRETTY_NAME", "NAME", "VERSION", "ID_LIKE", "BUILD_ID", "IMAGE_ID", "IMAGE_VERSION",
    "DOCUMENTATION_URL", "SUPPORT_URL", "BUG_REPORT_URL",
})
IMAGE_KEYS = frozenset({
    "version", "description", "homepage", "units", "contents", "symlinks", "os-release",
    "compression", "block-size", "format",
})
# systemd's image_name_is_valid allows these; '_' separates name and version in NAME_VERSION.raw.
_IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
_PREFIX = re.compile(r"[A-Za-z0-9:_.\\-]+")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.~+-]*")
_OS_RELEASE_VALUE_BAD = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class UnitFile:
    """One unit file a portable image ships."""
    name: str  # the file name inside /etc/systemd/system
    source: str  # absolute host path
    location: Location


@dataclass(frozen=True, slots=True)
class Content:
    """One host file copied into a portable image."""
    path: str  # absolute host path, copied to the same path in the image
    location: Location


@dataclass(frozen=True, slots=True)
class Symlink:
    """One symbolic link made in a portable image."""
    object: str  # the link target
    symlink: str  # absolute path of the link inside the image
    location: Location


@dataclass(frozen=True, slots=True)
class PortableImage:
    """One declared [images] entry."""
    name: str
    version: str
    description: str | None
    homepage: str | None
    units: tuple[UnitFile, ...]
    contents: tuple[Content, ...]
    symlinks: tuple[Symlink, ...]
    os_release: tuple[tuple[str, str], ...]  # explicit os-release settings, in declaration order
    prefixes: tuple[str, ...]
    format: ImageFormat
    compression: str
    block_size: int
    location: Location

    @property
    def file_name(self) -> str:
        """The portable-services naming convention: NAME_VERSION.raw."""
        return f"{self.name}_{self.version}.raw"

    def with_format(self, fmt: ImageFormat) -> PortableImage:
        """The same image built as ``fmt`` (the command line overriding the declaration)."""
        if fmt == self.format:
            return self
        compression = self.compression
        if compression not in COMPRESSORS[fmt]:
            compression = DEFAULT_COMPRESSION[fmt]
        return dataclasses.replace(self, format=fmt, compression=compression)


def parse_block_size(table: Table, key: str) -> int:
    """A block size: the shared size field (bytes, or a number with K or M, as mksquashfs -b
    takes it), a power of two from 4K to 1M."""
    value = fields.size(table, key, DEFAULT_BLOCK_SIZE)
    assert value is not None
    if value < 4096 or value > (1 << 20) or value & (value - 1):
        raise table.error(f"{table.name(key)} must be a power of two between 4K and 1M, not {value}", key)
    return value


def _host_path(table: Table, key: str, index: int, value: str, *, relative: bool) -> str:
    """A host path; with ``relative``, relative to the directory of the file it was written in."""
    if not value:
        raise table.error(f"{table.name(key, index)} is empty", key, index)
    if (problem := fields.text_problem(value)) is not None:
        raise table.error(f"{table.name(key, index)}: {value!r} {problem}", key, index)
    if not os.path.isabs(value):
        file = table.location(key, index).file
        if not relative or file.startswith("<"):
            raise table.error(f"{table.name(key, index)} must be an absolute path, not {value!r}", key, index)
        value = os.path.join(os.path.abspath(os.path.dirname(file)), value)
    return os.path.normpath(value)


def _os_release(table: Table) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...] | None]:
    sub = table.get_table("os-release")
    sub.reject_unknown(OS_RELEASE_KEYS)
    settings: list[tuple[str, str]] = []
    prefixes = None
    for key in sub:
        if key == "PORTABLE_PREFIXES":
            raw = sub.raw(key)
            items = [raw] if isinstance(raw, str) else sub.get_str_list(key)
            words = [w for item in items for w in item.split()]
            if not words:
                raise sub.error(f"{sub.name(key)} must name at least one prefix", key)
            for w in words:
                if not _PREFIX.fullmatch(w):
                    raise sub.error(f"{sub.name(key)}: {w!r} is not a valid unit name prefix", key)
            prefixes = tuple(words)
            continue
        value = sub.req_str(key)
        if _OS_RELEASE_VALUE_BAD.search(value):
            raise sub.error(f"{sub.name(key)} must not contain control characters or newlines", key)
        settings.append((key, value))
    return tuple(settings), prefixes


def parse_image(name: str, table: Table) -> PortableImage:
    """One ``[portable.<name>]`` table. Relative unit paths are relative to the declaring file."""
    table.reject_unknown(IMAGE_KEYS)
    where = table.location()
    if not _IMAGE_NAME.fullmatch(name):
        raise ConfigError(
            f"portable image name {name!r} must be letters, digits, '.' and '-' (no '_': it separates "
            "name and version in NAME_VERSION.raw)", location=where)
    version = table.req_str("version")
    if not _VERSION.fullmatch(version):
        raise table.error(f"{table.name('version')} {version!r} must be letters, digits and . ~ + -", "version")
    fmt_text = table.get_str("format", ImageFormat.SQUASHFS.value)
    assert fmt_text is not None
    try:
        fmt = ImageFormat(fmt_text)
    except ValueError:
        raise table.error(f"{table.name('format')} must be squashfs or erofs, not {fmt_text!r}", "format") from None
    compression = table.get_str("compression", DEFAULT_COMPRESSION[fmt])
    assert compression is not None
    if compression not in COMPRESSORS[fmt]:
        raise table.error(
            f"{table.name('compression')} {compression!r} is not available for {fmt}",
            "compression", hint=f"use one of: {', '.join(COMPRESSORS[fmt])}")
    block_size = parse_block_size(table, "block-size")
    os_release, prefixes = _os_release(table)
    prefixes = prefixes or (name,)

    units: list[UnitFile] = []
    seen: dict[str, int] = {}
    for i, path in enumerate(table.get_str_list("units")):
        source = _host_path(table, "units", i, path, relative=True)
        unit = os.path.basename(source)
        # Checked here, from the declaration alone: a bad name stops the build before staging.
        problem = unit_problem(unit, prefixes)
        if problem is not None:
            raise table.error(problem, "units", i, hint=f"rename the unit, or set PORTABLE_PREFIXES in "
                              f"[{table.name('os-release')}] to prefixes its name starts with")
        if unit in seen:
            raise table.error(f"unit {unit!r} is listed twice (also as units[{seen[unit]}])", "units", i)
        seen[unit] = i
        units.append(UnitFile(unit, source, table.location("units", i)))
    if not units:
        raise table.error(f"{table.name('units')} must list at least one unit file", "units")

    contents = tuple(
        Content(_host_path(table, "contents", i, p, relative=False), table.location("contents", i))
        for i, p in enumerate(table.get_str_list("contents"))
    )
    symlinks = []
    for i, item in enumerate(table.get_list("symlinks")):
        if not isinstance(item, dict):
            raise table.error(f"{table.name('symlinks', i)} must be a table {{object, symlink}}", "symlinks", i)
        sub = Table(item, (*table.path, "symlinks", i), table.file, table.positions)
        sub.reject_unknown({"object", "symlink"})
        target, link = sub.req_str("object"), sub.req_str("symlink")
        for k, v in (("object", target), ("symlink", link)):
            if (problem := fields.text_problem(v)) is not None:
                raise sub.error(f"{sub.name(k)}: {v!r} {problem}", k)
        if not os.path.isabs(link) or os.path.normpath(link) == "/":
            raise sub.error(f"{sub.name('symlink')} must be an absolute path inside the image", "symlink")
        symlinks.append(Symlink(target, os.path.normpath(link), sub.location("symlink")))

    return PortableImage(
        name=name, version=version, description=fields.text(table, "description"),
        homepage=fields.text(table, "homepage"), units=tuple(units), contents=contents,
        symlinks=tuple(symlinks), os_release=os_release, prefixes=prefixes, format=fmt,
        compression=compression, block_size=block_size, location=where,
    )


def parse_portable(declaration: Table) -> dict[str, PortableImage]:
    """All ``[portable.*]`` tables of a declaration, by name."""
    return {name: parse_image(name, sub) for name, sub in declaration.get_table("portable").tables()}
