"""``[os]``: which engine puts the OS on the new root, and which bootloader boots it.

```toml
[os]
engine = "mmdebstrap"          # image, mmdebstrap, debootstrap, dnf, pacstrap
suite = "bookworm"
mirror = "http://deb.debian.org/debian"
packages = ["linux-image-amd64", "systemd-boot", "openssh-server", "python3"]
bootloader = "systemd-boot"    # systemd-boot, grub, none
esp = "/boot/efi"
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from freshroot.config.table import Table

KEYS = frozenset({"engine", "image", "suite", "mirror", "release", "packages", "architecture", "bootloader",
                  "esp"})
ENGINES = ("image", "mmdebstrap", "debootstrap", "dnf", "pacstrap")
BOOTLOADERS = ("none", "systemd-boot", "grub")
# Which keys each engine reads; any other is refused rather than ignored.
ENGINE_KEYS = {
    "image": {"image"},
    "mmdebstrap": {"suite", "mirror", "packages", "architecture"},
    "debootstrap": {"suite", "mirror", "packages", "architecture"},
    "dnf": {"release", "packages", "architecture"},
    "pacstrap": {"packages"},
}
COMMON = {"engine", "bootloader", "esp"}
_WORD = re.compile(r"[A-Za-z0-9@][A-Za-z0-9@_.+:~-]*")
_MIRROR = re.compile(r"(https?|file)://[^\s'\"\\]+")


@dataclass(frozen=True, slots=True)
class OsRoot:
    """The [os] section: how the OS root is laid down."""
    engine: str | None  # None: [os] names no engine yet (bootstrap refuses)
    image: str | None = None  # engine image: a tar archive (any compression tar reads) or a raw disk image
    suite: str | None = None
    mirror: str | None = None
    release: str | None = None
    packages: tuple[str, ...] = ()
    architecture: str | None = None
    bootloader: str = "none"
    esp: str = "/boot/efi"


def _word(t: Table, key: str) -> str | None:
    value = t.get_str(key)
    if value is not None and not _WORD.fullmatch(value):
        raise t.error(f"{t.name(key)}: {value!r} is not a name (letters, digits and @_.+:~-)", key)
    return value


def parse_os(declaration: Table) -> OsRoot | None:
    """The ``[os]`` section; None when the declaration has none."""
    if "os" not in declaration:
        return None
    t = declaration.get_table("os")
    t.reject_unknown(KEYS)
    engine = t.get_str("engine")
    if engine is None:
        if t.keys():
            raise t.error(f"{t.name('engine')} is required: one of {', '.join(ENGINES)}")
        return OsRoot(None)
    if engine not in ENGINES:
        raise t.error(f"{t.name('engine')} must be one of {', '.join(ENGINES)}, not {engine!r}", "engine")
    allowed = ENGINE_KEYS[engine] | COMMON
    for key in t:
        if key not in allowed:
            raise t.error(f"{t.name(key)} means nothing to engine = {engine!r} (it reads "
                          f"{', '.join(sorted(ENGINE_KEYS[engine]))})", key)
    image = t.get_str("image")
    if engine == "image" and (image is None or not image.startswith("/")):
        raise t.error(f"{t.name('image')}: engine = \"image\" needs the absolute path of a tar or raw image",
                      "image" if image is not None else "engine")
    suite = _word(t, "suite")
    if engine in ("mmdebstrap", "debootstrap") and suite is None:
        raise t.error(f"{t.name('suite')} is required by engine = {engine!r} (bookworm, trixie, noble...)", "engine")
    release = _word(t, "release")
    if engine == "dnf" and release is None:
        raise t.error(f"{t.name('release')} is required by engine = \"dnf\" (the --releasever, e.g. \"41\")",
                      "engine")
    mirror = t.get_str("mirror")
    if mirror is not None and not _MIRROR.fullmatch(mirror):
        raise t.error(f"{t.name('mirror')} must be an http(s):// or file:// URL, not {mirror!r}", "mirror")
    packages = t.get_str_list("packages")
    for i, name in enumerate(packages):
        if not _WORD.fullmatch(name):
            raise t.error(f"{t.name('packages', i)}: {name!r} is not a package name", "packages", i)
    if engine == "pacstrap" and not packages:
        packages = ["base", "linux", "linux-firmware"]  # the Arch install guide's pacstrap
    if engine == "dnf" and not packages:
        raise t.error(f"{t.name('packages')}: engine = \"dnf\" needs the packages to install (\"@core\", a kernel...)",
                      "engine")
    bootloader = t.get_str("bootloader", "none")
    assert bootloader is not None
    if bootloader not in BOOTLOADERS:
        raise t.error(f"{t.name('bootloader')} must be one of {', '.join(BOOTLOADERS)}, not {bootloader!r}",
                      "bootloader")
    esp = t.get_str("esp", "/boot/efi")
    assert esp is not None
    if not esp.startswith("/") or esp == "/" or any(p in (".", "..") for p in esp.split("/")) or " " in esp:
        raise t.error(f"{t.name('esp')} must be where the ESP is mounted in the new root, like \"/boot/efi\"", "esp")
    if "esp" in t and bootloader == "none":
        raise t.error(f"{t.name('esp')} is where the bootloader is installed, and bootloader = \"none\" installs "
                      "none: it would mean nothing", "esp", hint='set bootloader, or drop esp')
    return OsRoot(engine, image, suite, mirror, release, tuple(packages), _word(t, "architecture"), bootloader,
                  esp.rstrip("/"))


ESP_GUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"


def check(declaration: Table) -> OsRoot | None:
    """For ``freshroot config check``: [os], and with [disk] partitions, that systemd-boot
    (UEFI only) has an ESP partition mounted where [os] esp says."""
    os_root = parse_os(declaration)
    if os_root is None or os_root.bootloader != "systemd-boot" or "disk" not in declaration:
        return os_root
    from freshroot.disk.model import parse_disk

    layout = parse_disk(declaration)
    if layout is None or not layout.partitions:
        return os_root
    if not any(p.mount == os_root.esp and p.type.lower() in ("esp", ESP_GUID) for p in layout.partitions):
        t = declaration.get_table("os")
        raise t.error(f'{t.name("bootloader")} = "systemd-boot" is installed on the ESP at {os_root.esp}, and [disk] '
                      f"mounts no partition of type esp there", "esp" if "esp" in t else "bootloader",
                      hint=f'a [disk.partitions.esp] with type = "esp", format = "vfat", mount = "{os_root.esp}"')
    return os_root
