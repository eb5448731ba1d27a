"""Collecting parsed items into per-path groups as systemd does (ItemArray): duplicate lines,
which items may share a path, their order, and the age X lines inherit."""

from __future__ import annotations

from dataclasses import dataclass, field

from freshroot.tmpfiles.fields import path_startswith
from freshroot.tmpfiles.globs import fnmatch_path
from freshroot.tmpfiles.model import Config, Item, ItemGroup, ItemType

_DIR_TYPES = frozenset({
    ItemType.CREATE_DIRECTORY, ItemType.TRUNCATE_DIRECTORY, ItemType.CREATE_SUBVOLUME,
    ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA, ItemType.CREATE_SUBVOLUME_NEW_QUOTA,
})


def _data(item: Item) -> bytes | None:
    if item.binary is not None:
        return item.binary
    return None if item.argument is None else item.argument.encode("utf-8", "surrogateescape")


def compatible(a: Item, b: Item) -> bool:
    """item_compatible(): two owning items for one path must agree on everything that decides
    what the node becomes; other combinations always coexist."""
    if not (a.type.takes_ownership and b.type.takes_ownership):
        return True
    return (
        _data(a) == _data(b)
        and a.uid == b.uid and a.gid == b.gid
        and a.mode_set == b.mode_set and a.mode == b.mode and a.mode_only_create == b.mode_only_create
        and a.age == b.age
        and a.mode_masked == b.mode_masked
        and a.device == b.device
    )


def is_duplicate(existing: list[Item], item: Item) -> bool:
    """is_duplicated_item(): incompatible with one already there, unless both are w+ lines."""
    for e in existing:
        if compatible(e, item):
            continue
        both_append = (e.type is ItemType.WRITE_FILE and e.plus
                       and item.type is ItemType.WRITE_FILE and item.plus)
        if not both_append:
            return True
    return False


def sort_key(item: Item) -> tuple[int, int]:
    """item_compare(): owning types first, then by the type's letter (its byte value)."""
    return (0 if item.type.takes_ownership else 1, ord(item.type.value))


def _fnmatch_pathname_period(pattern: str, name: str) -> bool:
    """fnmatch(3) with FNM_PATHNAME|FNM_PERIOD, as glibc reads the pattern (globs.fnmatch_path)."""
    return fnmatch_path(pattern, name)


@dataclass
class ConfigBuilder:
    """Mutable while files are read; ``build()`` freezes it into a Config."""

    items: dict[str, list[Item]] = field(default_factory=dict)
    globs: dict[str, list[Item]] = field(default_factory=dict)
    invalid: bool = False
    aborted: bool = False

    def add(self, item: Item) -> bool:
        """Add ``item``; False when it is a conflicting duplicate (the caller logs the notice)."""
        table = self.globs if item.type.takes_glob else self.items
        existing = table.get(item.path)
        if existing is not None:
            if is_duplicate(existing, item):
                return False
            existing.append(item)
            existing.sort(key=sort_key)
        else:
            table[item.path] = [item]
        return True

    def inherit_x_ages(self) -> None:
        """After each file, as read_config_file() does: an X line takes the age of the d/D/v/q/Q
        line for the same path, else of the closest one above it that its glob matches."""
        if not any(i.type is ItemType.IGNORE_DIRECTORY_PATH for items in self.globs.values() for i in items):
            return
        for glob_items in self.globs.values():
            for idx, i in enumerate(glob_items):
                if i.type is not ItemType.IGNORE_DIRECTORY_PATH:
                    continue
                candidate: Item | None = None
                for plain in self.items.values():
                    for j in plain:
                        if j.type not in _DIR_TYPES:
                            continue
                        if j.path == i.path:
                            candidate = j
                            break  # only this path's items; later paths may still refine it
                        if (path_startswith(j.path, candidate.path)
                                and _fnmatch_pathname_period(i.path, j.path)) if candidate \
                                else path_startswith(i.path, j.path):
                            candidate = j
                if candidate is not None and candidate.age is not None:
                    glob_items[idx] = i._replace(age=candidate.age)

    def build(self) -> Config:
        return Config(
            groups=tuple(ItemGroup(p, tuple(v)) for p, v in self.items.items()),
            globs=tuple(ItemGroup(p, tuple(v)) for p, v in self.globs.items()),
            invalid=self.invalid,
            read_failed=self.aborted,
        )


def parent_of(config: Config, group: ItemGroup) -> ItemGroup | None:
    """link_parent(): the closest group (plain first, then glob) whose path is a proper prefix."""
    plain = {g.path: g for g in config.groups}
    globs = {g.path: g for g in config.globs}
    path = group.path
    # PATH_FOREACH_PREFIX: "/a/b/c" -> "/a/b", "/a"; "/" itself is never a parent.
    while True:
        path = path.rsplit("/", 1)[0]
        if not path:
            return None
        found = plain.get(path) or globs.get(path)
        if found is not None:
            return found
