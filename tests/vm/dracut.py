"""Debian with dracut instead of initramfs-tools, for the VM tests of freshroot's dracut
module (test_root_dracut.py: wipe = "overlay"; test_root_btrfs.py[dracut]: wipe = "btrfs").

A cached derived image (tests/vm/image.py, derived_image): the base with initramfs-tools
purged and Debian's dracut packages (downloaded once with the host's apt, cached beside the
base image) installed; made once per base image and package set, so only the first run on
a machine pays for it. Nothing of freshroot is in it. The script below, with the dracut.conf
it writes, is part of the image's key: a change to either makes a new image.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.vm.image import BaseImage, cache_dir, derived_image

# dracut and what the base image lacks of its dependencies (bookworm).
PACKAGES = ("dracut", "dracut-core", "kpartx")

# A small initrd for a virtio disk, as the base image's initramfs-tools one is (TCG unpacks
# and runs it slowly): no host-only probing in a chroot, the systemd initrd and what finding
# the root needs. freshroot's module is added by its own conf (add_dracutmodules). Not
# compressed: gzip -9 of the 47 MB (Python for the early generator) is some 8 s of CPU at
# every `freshroot install` and the kernel's gunzip under TCG at every boot, and neither is
# what this test is about.
DRACUT_CONF = """\
hostonly="no"
dracutmodules=" systemd-initrd dracut-systemd rootfs-block kernel-modules "
drivers=" virtio_pci virtio_blk ext4 crc32c_generic "
compress="cat"
"""

# The cached image (derived_image): Debian with dracut instead of initramfs-tools. The conf
# comes first, so the initrd dpkg's trigger builds (the image's own, in $OUT) is small too.
DRACUT_IMAGE = f"""
mkdir -p "$ROOT/etc/dracut.conf.d" "$ROOT/tmp/debs"
cat > "$ROOT/etc/dracut.conf.d/10-freshroot-test.conf" <<'CONF'
{DRACUT_CONF}CONF
cp $INPUTS "$ROOT/tmp/debs/"
chroot "$ROOT" dpkg --purge --force-depends initramfs-tools initramfs-tools-core >/dev/null
chroot "$ROOT" sh -c 'dpkg -i /tmp/debs/*.deb' >/dev/null
rm -rf "$ROOT/tmp/debs"
test ! -e "$ROOT/usr/sbin/update-initramfs"
cp "$(ls "$ROOT"/boot/initrd.img-* | sort -V | tail -1)" "$OUT/initrd.img"
"""

def debs(names: tuple[str, ...]) -> list[Path]:
    """Debian packages for the guest, downloaded once with the host's apt (a bookworm host,
    as the base image) and cached beside the base image."""
    where = cache_dir() / "debs"
    where.mkdir(parents=True, exist_ok=True)
    found = [next(iter(sorted(where.glob(f"{name}_*.deb"))), None) for name in names]
    missing = [name for name, path in zip(names, found, strict=True) if path is None]
    if missing:
        proc = subprocess.run(["apt-get", "download", *missing], cwd=where, capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot download {' '.join(missing)} with apt-get: {proc.stderr.strip()[-300:]}")
    return [sorted(where.glob(f"{name}_*.deb"))[-1] for name in names]


def dracut_image(vm_base: BaseImage) -> BaseImage:
    """The base with dracut instead of initramfs-tools, cached (made on first use)."""
    return derived_image(vm_base, "dracut", DRACUT_IMAGE, inputs=debs(PACKAGES))
