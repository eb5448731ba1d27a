"""``python3 -m freshroot``: the command line (freshroot.cli).

One command line takes a shorter way: ``apply --boot``, exactly as freshroot-activate.service
runs it at every boot (systemd/units.py), and with ``--root DIR`` after it (a scratch root,
as the tests and bench/boot_cost.py run it), goes straight to the boot activation: the
parser with its table of commands is a tenth of the modules the boot would load, paid at
every boot, on slow machines too (issue 19). Every other spelling goes through the parser.

There, before anything defines a dataclass, their compiled methods are taken from
freshroot.classcache's file below the boot's root (the image's, made for its interpreter);
the command line does the same once it has parsed its arguments.
"""

import os
import sys


def _run(args: list[str]) -> int:
    if args[:2] == ["apply", "--boot"] and (len(args) == 2 or (len(args) == 4 and args[2] == "--root")):
        root = args[3] if len(args) == 4 else "/"
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
    from freshroot.cli import main

    return main()


raise SystemExit(_run(sys.argv[1:]))
