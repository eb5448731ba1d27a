"""How freshroot-activate.service starts ``freshroot apply --boot``, paid at every boot.

The unit runs ``python3 -I -c`` with ``systemd.units.BOOT_COMMAND``, which calls :func:`main`,
rather than ``python3 -m freshroot apply --boot``: no runpy, and not the command line's
parser, whose table of commands is a tenth of the modules the boot would load (issue 19).
(runpy itself saves little: the importlib machinery it loads is loaded by inspect anyway.)
``python3 -m freshroot apply --boot [--root DIR]``, typed by hand, takes the same way
(freshroot.__main__) with the same messages and exit codes.

Before anything defines a dataclass, their compiled methods are taken from
freshroot.classcache's file below the boot's root (the image's, made for its interpreter).
"""

from __future__ import annotations

import os


def main(root: str = "/") -> int:
    try:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        pass  # the activation says what is wrong with the root
    else:
        from freshroot import classcache

        classcache.enable(root_fd=fd)
        os.close(fd)
    from freshroot.systemd.activate import main as boot_main

    return boot_main(root)
