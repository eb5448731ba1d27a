"""``python3 -m freshroot``: the command line (freshroot.cli).

One command line takes a shorter way: ``apply --boot``, what freshroot-activate.service
runs at every boot (freshroot.bootstart), and with ``--root DIR`` after it (a scratch root,
as the tests and bench/boot_cost.py run it), goes straight to the boot activation without
the parser: its table of commands is a tenth of the modules the boot would load (issue 19).
Every other spelling goes through the parser, which takes the dataclasses' compiled methods
from freshroot.classcache once it has parsed the arguments.
"""

import sys


def _run(args: list[str]) -> int:
    if args[:2] == ["apply", "--boot"] and (len(args) == 2 or (len(args) == 4 and args[2] == "--root")):
        from freshroot.bootstart import main as boot

        return boot(args[3] if len(args) == 4 else "/")
    from freshroot.cli import main

    return main()


raise SystemExit(_run(sys.argv[1:]))
