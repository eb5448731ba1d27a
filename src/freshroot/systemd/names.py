"""The names of the units freshroot's generator writes, and ``[tmpfiles] engine``'s values, in
a module of their own: the steps that name them (tmpfiles-resetup and tmpfiles-boot, at every
apply and boot) need no unit-writing code."""

from enum import StrEnum

ACTIVATE = "freshroot-activate.service"
PREPARE = "freshroot-prepare.service"
FILES = "freshroot-persist-files.service"
TMPFILES_SETUP = "freshroot-tmpfiles-setup.service"
TMPFILES_RESETUP = "freshroot-tmpfiles-resetup.service"


class Engine(StrEnum):
    """What applies tmpfiles.d at boot: ``[tmpfiles] engine``."""

    FRESHROOT = "freshroot"
    SYSTEMD = "systemd"
