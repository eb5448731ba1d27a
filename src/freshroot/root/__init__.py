"""``[root]``: how the root file system is made fresh at every boot (docs/root-wipe.md).

model parses the section; setup writes what the initrd reads and installs the initramfs-tools
hook and script (``freshroot install``, and the ``root`` step of ``apply``); top reaches the
btrfs top level (blank, old roots) in a private mount namespace for ``freshroot roots`` and
``freshroot rescue``. The wipe itself is the POSIX sh script initramfs-tools/local-premount,
run by the initrd: no Python there.
"""
