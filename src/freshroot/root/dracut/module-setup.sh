#!/bin/bash
# freshroot: the root made fresh at every boot ([root] wipe = "btrfs", "overlay" or "tmpfs"),
# for dracut with systemd in the initrd (Fedora, RHEL, Debian's dracut package).
#
# Installed by `freshroot install` as /usr/lib/dracut/modules.d/90freshroot-root/ with
# wipe-btrfs and wipe-volatile beside it: the very scripts freshroot installs for
# initramfs-tools (local-premount and local-bottom), run here by freshroot-root (the wrapper
# that gives them initramfs-tools' variables) from two units:
#   freshroot-root-btrfs.service     After=initrd-root-device.target, Before=sysroot.mount
#   freshroot-root-volatile.service  After=sysroot.mount, Before=initrd-root-fs.target
# Both are wanted by initrd-root-fs.target; each does nothing unless the root's
# /etc/freshroot/root-wipe.conf names its wipe, so a change of wipe needs no new initrd.
#
# When the declaration has `early = true` paths, the initrd also gets freshroot's generator
# with the Python files it imports and the declaration (listed by `python3 -I -m
# freshroot.root.initrd_files`): systemd runs it in the initrd, and it writes the bind
# mounts of those paths below /sysroot (docs/systemd.md, "Early paths").

check() {
	# Only `freshroot install` puts this module here, for a root that asks to be wiped.
	return 0
}

depends() {
	echo systemd
	return 0
}

installkernel() {
	hostonly='' instmods btrfs overlay
}

install() {
	inst_multiple mount umount mkdir mv cat date rm ln cp sed
	inst_multiple -o btrfs udevadm
	inst_simple "$moddir/freshroot-root" /usr/lib/freshroot/freshroot-root
	inst_simple "$moddir/wipe-btrfs" /usr/lib/freshroot/wipe-btrfs
	inst_simple "$moddir/wipe-volatile" /usr/lib/freshroot/wipe-volatile
	local unit
	for unit in freshroot-root-btrfs.service freshroot-root-volatile.service; do
		inst_simple "$moddir/$unit" "$systemdsystemunitdir/$unit"
		$SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target "$unit"
	done
	install_early
}

# freshroot's generator for `early = true` paths, when the declaration has any.
install_early() {
	local generator=/usr/lib/systemd/system-generators/freshroot-generator files
	[[ -x $dracutsysrootdir$generator ]] || return 0
	files=$(cd / && /usr/bin/python3 -I -m freshroot.root.initrd_files 2>/dev/null) || {
		dwarn "freshroot: cannot list the files of freshroot's generator; early paths are mounted after the switch to the root"
		return 0
	}
	[[ $files ]] || return 0 # no early paths
	inst_multiple /usr/bin/python3 $files || return 1
	# dracut resolves the libraries of executables only: extension modules (_ctypes needs
	# libffi) are 0644 on Debian, so their libraries are named here.
	local so lib
	for so in $files; do
		[[ $so == *.so ]] || continue
		for lib in $(ldd "$so" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p'); do
			inst_library "$lib"
		done
	done
	inst_simple "$generator"
}
