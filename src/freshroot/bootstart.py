"""How freshroot-activate.service starts ``freshroot apply --boot``, paid at every boot.

The unit runs ``python3 -I -c`` with :data:`COMMAND` rather than ``python3 -m freshroot apply
--boot``: ``-m`` loads runpy and the importlib machinery it uses (some 13 M instructions, 70 ms
of a warm start in the test VM, issue 19), and the command line's parser is a tenth of the
modules the boot would load. ``python3 -m freshroot apply --boot [--root DIR]``, typed by
hand, takes the same way (freshroot.__main__) with the same messages and exit codes.

Before anything defines a dataclass, their compiled methods are taken from
freshroot.classcache's file below the boot's root (the image's, made for its interpreter).
"""

from __future__ import annotations

import os

COMMAND = "import sys; from freshroot.bootstart import main; sys.exit(main())"


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
