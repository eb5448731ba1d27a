"""``[os]``: the OS root put on a new disk (a distribution's bootstrapper or an image), and
its bootloader."""
