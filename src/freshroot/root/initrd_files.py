"""``python3 -I -m freshroot.root.initrd_files``: what an initrd needs to run freshroot's
generator for ``early = true`` paths, one absolute path a line (nothing when the declaration
has none).

Run by the dracut module 90freshroot-root (module-setup.sh) inside the root the initrd is
built for. It runs the generator here as the initrd would (``SYSTEMD_IN_INITRD=1``, into a
scratch directory): if that writes no unit there are no early paths and nothing is printed.
Otherwise it prints the Python files that run imported (the interpreter's own start-up
modules included, with their compiled caches), the whole freshroot package (an error path
may import more of it), the declaration files, and freshroot.classcache's file when the root
has one (the initrd's interpreter is the root's). A whole standard library would make the
initrd several times bigger and every boot slower to unpack.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator

CONFIG_DIR = "/etc/freshroot"


def _module_files() -> Iterator[str]:
    for module in list(sys.modules.values()):
        for attr in ("__file__", "__cached__"):
            path = getattr(module, attr, None)
            if isinstance(path, str) and os.path.isabs(path) and os.path.isfile(path):
                yield path


def _tree(top: str, suffixes: tuple[str, ...]) -> Iterator[str]:
    for directory, _dirs, names in os.walk(top):
        for name in names:
            if name.endswith(suffixes):
                yield os.path.join(directory, name)


def files(root: str = "/") -> list[str]:
    """The files, or [] when the generator writes no unit in the initrd (no early path)."""
    from freshroot.systemd import generator

    os.environ["SYSTEMD_IN_INITRD"] = "1"
    with tempfile.TemporaryDirectory(prefix="freshroot-initrd-") as scratch:
        written = generator.generate(scratch, root=root, initrd=True, python=sys.executable)
    if not written:
        return []
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = set(_module_files()) | set(_tree(package, (".py", ".pyc", ".toml", "py.typed")))
    found |= set(_tree(os.path.join(root, CONFIG_DIR.lstrip("/")), (".toml",)))
    from freshroot.classcache import CACHE

    cache = os.path.join(root, CACHE.lstrip("/"))
    if os.path.isfile(cache):  # the compiled dataclass methods: a faster generator in the initrd too
        found.add(cache)
    return sorted(found)


def main() -> int:
    try:
        listed = files()
    except Exception as e:  # noqa: BLE001 - module-setup.sh says the early paths stay late
        sys.stderr.write(f"freshroot.root.initrd_files: {e}\n")
        return 1
    sys.stdout.write("".join(f"{path}\n" for path in listed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
