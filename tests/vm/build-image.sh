#!/bin/bash
# The recipe of the VM tests' base image: a minimal Debian bookworm with systemd, the cloud
# kernel, Python and sshd, and the test driver (guest/) that runs a boot script from a
# control disk and powers off. The image's cache key is a hash of this file and guest/, so
# any change here rebuilds it.
#
#   build-image.sh OUTDIR MIRROR
#
# Writes OUTDIR/root.raw (ext4, no partition table), OUTDIR/vmlinuz and OUTDIR/initrd.img.
# Run it inside a private mount namespace (image.py does, with unshare): debootstrap and the
# chroot steps mount /proc and /sys in the tree, and a crash must not leave them mounted.
set -euo pipefail

out=$1
mirror=$2
here=$(dirname "$(readlink -f "$0")")
tree=$out/tree

packages=(
    systemd systemd-sysv udev dbus      # the init system under test, and what logind needs
    linux-image-cloud-amd64 initramfs-tools
    python3                             # bookworm: 3.11, what freshroot needs
    openssh-server                      # the host keys the persistence test keeps
    e2fsprogs kmod procps
    btrfs-progs                         # the btrfs root of the root-wipe test (tests/vm/test_root_btrfs.py)
)

mkdir -p "$tree"
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
    bookworm "$tree" "$mirror"

in_tree() { chroot "$tree" "$@"; }

echo freshroot-vm >"$tree/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tfreshroot-vm\n' >"$tree/etc/hosts"
# The root is /dev/vda, no fsck (it is thrown away anyway). /persist is the disk labelled
# "persist"; nofail and a device timeout keep a boot without it from hanging (30 s, not less:
# under TCG udev may take 20 s to get to the disks).
cat >"$tree/etc/fstab" <<'EOF'
/dev/vda       /         ext4  rw,errors=remount-ro                          0 0
LABEL=persist  /persist  ext4  defaults,nofail,x-systemd.device-timeout=30s  0 2
EOF
mkdir -p "$tree/persist"

# No machine id baked in, as Debian's cloud images ship it: an empty /etc/machine-id. systemd
# then writes a new id at every boot of the wiped root (an empty file is not a first boot, so
# systemd-firstboot does not prompt); keeping one id across boots is freshroot's job
# (`freshroot install --machine-id`, the machine-id preset).
: >"$tree/etc/machine-id"

# Passwordless root with autologin on the serial console, for looking at a guest by hand.
in_tree passwd -d root
mkdir -p "$tree/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$tree/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF

# Debian generates SSH host keys in openssh-server's postinst, so they would be baked into the
# image and identical on every boot whether persisted or not. Remove them and generate at boot
# when missing, as Fedora's sshd-keygen does: a wiped root then gets new keys unless persisted.
# Only an ed25519 key: RSA key generation takes half a minute under TCG.
rm -f "$tree"/etc/ssh/ssh_host_*
echo "HostKey /etc/ssh/ssh_host_ed25519_key" >"$tree/etc/ssh/sshd_config.d/host-key.conf"
install -m 0644 "$here/guest/ssh-keygen.service" "$tree/etc/systemd/system/ssh-keygen.service"
ln -s ../ssh-keygen.service "$tree/etc/systemd/system/multi-user.target.wants/ssh-keygen.service"

# Units that only slow a test boot down (e2scrub_reap alone takes 10 s under TCG): periodic
# jobs and LVM snapshot clean-up. Masked, not removed, so the image stays a stock Debian.
for unit in e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer \
        dpkg-db-backup.timer fstrim.timer; do
    ln -sf /dev/null "$tree/etc/systemd/system/$unit"
done

# The test driver.
install -D -m 0755 "$here/guest/driver" "$tree/usr/lib/freshroot-test/driver"
install -m 0644 "$here/guest/freshroot-test.service" "$tree/etc/systemd/system/freshroot-test.service"
ln -s ../freshroot-test.service "$tree/etc/systemd/system/multi-user.target.wants/freshroot-test.service"

# qemu's TCG "max" CPU offers SVM; loading kvm_amd in the guest is slow and pointless.
printf 'blacklist kvm_amd\nblacklist kvm_intel\nblacklist kvm\n' >"$tree/etc/modprobe.d/freshroot-test.conf"

# Smaller, faster initrd: only what finding a virtio root needs (TCG boots read it slowly).
echo MODULES=list >"$tree/etc/initramfs-tools/conf.d/freshroot-test"
printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >>"$tree/etc/initramfs-tools/modules"
mount -t proc proc "$tree/proc"
in_tree update-initramfs -u -k all
umount "$tree/proc"

kernel=$(ls "$tree"/boot/vmlinuz-* | sort -V | tail -1)
cp "$kernel" "$out/vmlinuz"
cp "$tree/boot/initrd.img-${kernel##*/vmlinuz-}" "$out/initrd.img"

# Nothing the guest needs: package caches and lists.
rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*

mkfs.ext4 -q -F -L root -d "$tree" "$out/root.raw" 3G
rm -rf "$tree"
