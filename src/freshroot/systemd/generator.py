"""``freshroot-generator``: the systemd generator (``man systemd.generator``).

systemd runs it very early, with three output directories (normal, early, late) and
``SYSTEMD_IN_INITRD=1`` in the initrd. It reads the declaration and writes the units of
:mod:`freshroot.systemd.units` into the normal directory. A generator must not fail the
boot: whatever goes wrong is logged (to /dev/kmsg under systemd, else stderr) and it exits
0, writing nothing, so systemd boots the machine as if freshroot were not there, and says
why in the journal.

In the initrd the declaration is read from /sysroot when it is mounted (it is not, when
generators first run), else from the initrd's own /etc/freshroot (put it there with the
initrd builder); only ``early`` directories get units there, below /sysroot.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs start-up time, and a generator runs at every boot
if TYPE_CHECKING:
    from collections.abc import Sequence

    from freshroot.config.table import Table
    from freshroot.errors import ConfigError
    from freshroot.fs.accounts import Accounts
    from freshroot.persist.parse import Skip
    from freshroot.systemd import units

ROOT_ENV = "FRESHROOT_GENERATOR_ROOT"  # tests: read the declaration below this root


def log(message: str, *, priority: int = 3) -> None:
    """One line to the kernel log under systemd (generators have no journal yet), else stderr."""
    line = f"freshroot-generator: {message}"
    if os.environ.get("SYSTEMD_SCOPE") and os.access("/dev/kmsg", os.W_OK):
        try:
            fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
            try:
                os.write(fd, f"<{priority}>{line}\n".encode("utf-8", "surrogateescape")[:1000])
            finally:
                os.close(fd)
        except OSError:
            pass
        else:
            return
    sys.stderr.write(line + "\n")


def in_initrd() -> bool:
    value = os.environ.get("SYSTEMD_IN_INITRD")
    if value is not None:
        return value == "1"
    return os.path.exists("/etc/initrd-release")


def declaration_root(initrd: bool) -> str:
    if (root := os.environ.get(ROOT_ENV)) is not None:
        return root
    if initrd and os.path.isdir("/sysroot/etc/freshroot"):
        return "/sysroot"
    return "/"


def generate(normal_dir: str, *, root: str, initrd: bool, python: str) -> list[str]:
    """Write the units of the declaration below ``root``; returns what was written.

    In the main system, the units ``freshroot install`` cached for this very declaration
    (freshroot.systemd.gencache) when it still is that one; else they are built from it.
    Nothing here checks the declaration: the activation does, at boot, and says in the
    journal what it leaves out (a bad entry costs that entry only)."""
    from freshroot import __version__
    from freshroot.systemd import gencache

    # fs.ops.open_root's one line, without loading freshroot.fs (and dataclasses) for a replay.
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if not initrd and (cached := gencache.replay(root_fd, normal_dir, python=python,
                                                     version=__version__)) is not None:
            return cached
        from freshroot import classcache

        classcache.enable(root_fd=root_fd)  # before the modules below define their dataclasses
        from freshroot.config.load import load_declaration
        from freshroot.systemd.units import write

        table = load_declaration(root_fd, None, root=root)
        logged: set[str] = set()
        rendered = render_table(table, None, python=python, initrd=initrd, skip=lambda e: _skipped(e, logged))
    finally:
        os.close(root_fd)
    return write(rendered, normal_dir)


def _skipped(error: ConfigError, logged: set[str]) -> None:
    """One bad entry (a path no unit can carry, an unknown owner...) costs that entry only:
    the others still get their units. ``config check`` refuses the same entry. Each problem
    is logged once."""
    from freshroot.errors import DeclarationError

    for one in error.errors if isinstance(error, DeclarationError) else [error]:
        if str(one) not in logged:
            logged.add(str(one))
            log(f"{one}; this entry is skipped, the others are persisted", priority=3)


def storage_paths(table: Table) -> list[str]:
    """The storages' paths (``[persist."/persist"]``), all the main system's units need of
    the declaration: the activation is ordered after their mounts. A key that is no valid
    path is left out; the activation names it at boot, as ``config check`` does."""
    from freshroot.config.fields import path_problem

    section = table.get_table("persist") if "persist" in table else None
    if section is None:
        return []
    return [key for key in section if key.startswith("/") and isinstance(section.raw(key), dict)
            and path_problem(key) is None]


def render_table(table: Table, accounts: Accounts | None, *, python: str, initrd: bool,
                 skip: Skip | None = None, tmpfiles: str | None = None) -> units.Rendered:
    """The units of a loaded declaration: the one code path of the generator, ``render``
    (which passes no ``skip``: a bad entry is an error there) and ``install``'s cache.
    ``tmpfiles``: the systemd-tmpfiles binary the units name (default: the first here)."""
    from freshroot.systemd import units
    from freshroot.systemd.settings import options_from

    options = options_from(table, python=python, initrd=initrd, tmpfiles=tmpfiles)
    if not initrd:
        return units.render_main(storage_paths(table), options)
    from freshroot.persist.parse import parse

    return units.render_initrd(parse(table, accounts, skip=skip))


USAGE = "usage: freshroot-generator [-h] [--version] NORMAL-DIR [EARLY-DIR LATE-DIR]\n"
HELP = (USAGE + "\n"
        "The systemd generator of freshroot: systemd runs it at boot with its three output\n"
        "directories. It reads the declaration (/etc/freshroot/freshroot.toml and conf.d) and\n"
        "writes the bind mounts and services that persist what it declares into NORMAL-DIR.\n"
        "It never fails the boot: an error is logged and no unit is written.\n"
        "\n"
        "options:\n"
        "  -h, --help  show this help message and exit\n"
        "  --version   show freshroot's version and exit\n"
        "\n"
        "`freshroot render --units DIR` writes the same units. See freshroot-generator(8).\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Options first: systemd passes only absolute directories, so anything starting with "-"
    # is a person asking, never a directory to write units into.
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(HELP)
        return 0
    if "--version" in args:
        from freshroot import __version__

        sys.stdout.write(f"freshroot-generator (freshroot) {__version__}\n")
        return 0
    if len(args) not in (1, 3) or any(a.startswith("-") for a in args):
        sys.stderr.write(USAGE + "(run by systemd; `freshroot render --units DIR` writes the same units)\n")
        return 2 if not args or any(a.startswith("-") for a in args) else 0
    initrd = in_initrd()
    root = declaration_root(initrd)
    try:
        written = generate(args[0], root=root, initrd=initrd, python=sys.executable or "/usr/bin/python3")
    except OSError as e:
        log(f"{e.filename or ''}: {e.strerror or e}; no freshroot units this boot", priority=2)
    except Exception as e:  # noqa: BLE001 - a generator must never fail the boot with a traceback
        from freshroot.errors import FreshrootError

        if isinstance(e, FreshrootError):
            log(f"{e}; no freshroot units this boot, nothing is persisted", priority=2)
        else:
            log(f"internal error ({type(e).__name__}: {e}); no freshroot units this boot", priority=2)
    else:
        if os.environ.get("FRESHROOT_GENERATOR_DEBUG"):
            log(f"wrote {len(written)} files into {args[0]}", priority=7)
    return 0

