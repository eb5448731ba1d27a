"""What the declaration says about the generated units: ``[tmpfiles] engine``.

    [tmpfiles]
    engine = "freshroot"   # or "systemd": which program applies tmpfiles.d at boot

With a ``[tmpfiles]`` section the tmpfiles setup and re-setup units are generated, running
``freshroot tmpfiles`` unless ``engine = "systemd"``; without one, none are (the
distribution's systemd-tmpfiles-setup.service does the boot's tmpfiles work as always).
"""

from __future__ import annotations

from freshroot.config.table import Table
from freshroot.systemd.names import Engine

TYPE_CHECKING = False
if TYPE_CHECKING:
    from freshroot.systemd.units import Options


def engine(table: Table) -> Engine | None:
    if "tmpfiles" not in table:
        return None
    section = table.get_table("tmpfiles")
    value = section.get_str("engine")
    if value is None:
        return Engine.FRESHROOT
    try:
        return Engine(value)
    except ValueError:
        allowed = " | ".join(f'"{e.value}"' for e in Engine)
        raise section.error(f"{section.name('engine')} must be {allowed}, not {value!r}", "engine") from None


def options_from(table: Table, *, python: str, initrd: bool, tmpfiles: str | None = None) -> Options:
    """``tmpfiles``: the systemd-tmpfiles binary, by default the first there is here."""
    from freshroot.systemd.gencache import tmpfiles_binary
    from freshroot.systemd.units import Options

    return Options(python=python, systemd_tmpfiles=tmpfiles or tmpfiles_binary(),
                   engine=engine(table), in_initrd=initrd)
