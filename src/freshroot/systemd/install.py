"""``freshroot install``: prepare a freshly partitioned disk before its first boot.

A machine whose root is wiped at every boot fails its first boot when the storage
directories do not exist yet (systemd would make the mount sources root-owned 0755, or the
mounts fail). ``install --root /mnt``:

1. creates every storage directory and its parents below /mnt with the declared numeric
   owners and modes (names resolved in /mnt's passwd and group), never changing a directory
   that exists;
2. puts the declaration in /mnt/etc/freshroot (``--config`` files), unless one is there;
3. installs the generator, /mnt/usr/lib/systemd/system-generators/freshroot-generator, a
   small script that runs the freshroot installed in /mnt (``--copy-self`` copies this
   freshroot there, as a distribution package would install it). The generator writes and
   enables every unit at each boot, so there is nothing else to enable.

``--extra-files DIR`` writes the same into DIR instead, shaped for nixos-anywhere's
``--extra-files`` (DIR/persist/..., DIR/etc/freshroot, DIR/usr/lib/...): users and groups
are then resolved in ``--root``'s passwd and group (the host's by default).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from freshroot.activation.hostkeys import read_host_keys
from freshroot.activation.identity import install_checks, install_identity, valid_id
from freshroot.activation.owners import record_ids, resolve_accounts
from freshroot.compose import load_checked
from freshroot.config.load import expand_paths
from freshroot.errors import CommandError, ConfigError, OperationError, UsageError
from freshroot.fs import ops
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist.actions import MakeDirectory
from freshroot.persist.model import Persistence, is_below
from freshroot.persist.parse import parse
from freshroot.persist.steps import run_actions
from freshroot.plan.action import Action, Context
from freshroot.plan.journal import NoRecords
from freshroot.root import setup as root_setup
from freshroot.run import run
from freshroot.systemd.boot import prepare_actions

GENERATOR_DIR = "/usr/lib/systemd/system-generators"
GENERATOR = f"{GENERATOR_DIR}/freshroot-generator"
SITE = "/usr/lib/python3/dist-packages"
CONFIG_DIR = "/etc/freshroot"
GENERATOR_PYTHON = "/usr/bin/python3"  # the generator script's interpreter (sys.executable at boot)
GENERATOR_SCRIPT = '''#!/usr/bin/python3 -I
"""freshroot-generator, installed by `freshroot install`: runs the freshroot installed here.
A generator must not fail the boot: without freshroot it says so and writes nothing."""
import sys

try:
    from freshroot.systemd.generator import main
except ImportError as e:
    sys.stderr.write(f"freshroot-generator: freshroot is not installed ({e}); nothing is persisted\\n")
    sys.exit(0)
sys.exit(main())
'''
ENTRY_POINTS = {"freshroot": "freshroot.cli:main", "freshroot-tmpfiles": "freshroot.tmpfiles.commands:main"}


@dataclass
class InstallReport:
    """What `freshroot install` did, and what failed."""
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def storage_actions(p: Persistence, ctx: Context) -> list[Action]:
    """Only the creation of storage directories (and their parents): mount points and the
    rest are made at boot by freshroot-prepare.service."""
    return [a for a in prepare_actions(list(p.storages), ctx)
            if isinstance(a, MakeDirectory) and any(a.path == s.path or is_below(a.path, s.path) for s in p.storages)]


def _storage_roots(p: Persistence, ctx: Context, report: InstallReport) -> None:
    for s in p.storages:
        try:
            with ops.mkdir_parents(ctx.root_fd, s.path, 0o755):
                pass
        except OSError as e:
            raise OperationError(f"storage {ctx.display(s.path)}: {e.strerror or e}") from e
    report.done.append("storage roots: " + ", ".join(ctx.display(s.path) for s in p.storages))


def _write(root_fd: int, path: str, data: bytes, mode: int) -> None:
    parent, name = path.rsplit("/", 1)
    with ops.mkdir_parents(root_fd, parent or "/", 0o755) as d:
        replace_at(d.fd, name, data, mode=mode, uid=0, gid=0)


def _has_declaration(root_fd: int) -> bool:
    try:
        with chase(CONFIG_DIR, root_fd=root_fd, flags=ChaseFlags.SAFE) as d:
            names = ops.listdir_fd(d.fd)
    except OSError:
        return False
    return "freshroot.toml" in names or "conf.d" in names


def copy_declaration(root_fd: int, paths: Sequence[str], report: InstallReport) -> None:
    if _has_declaration(root_fd):
        report.done.append(f"kept the declaration in {CONFIG_DIR}")
        return
    sources = expand_paths(paths)
    for n, source in enumerate(sources):
        data = Path(source.path).read_bytes()
        target = (f"{CONFIG_DIR}/freshroot.toml" if len(sources) == 1
                  else f"{CONFIG_DIR}/conf.d/{n:02d}-{os.path.basename(source.path)}")
        _write(root_fd, target, data, 0o644)
        report.done.append(f"declaration {source.path} -> {target}")


# Asked of the target's own /usr/bin/python3: where its sysconfig installs pure-Python
# packages (what pip would use: /usr/local/lib/python3.N/dist-packages on Debian,
# .../site-packages on Fedora and Arch), if `python3 -I` searches it, else the first
# directory it does search.
SITE_PROBE = ("import site, sysconfig\n"
              "purelib = sysconfig.get_path('purelib')\n"
              "dirs = site.getsitepackages()\n"
              "print(purelib if purelib in dirs else dirs[0])\n")


def target_site(target: str) -> tuple[str, str]:
    """The site directory the target's ``/usr/bin/python3 -I`` (the generator's interpreter)
    searches, and how it was found. The target's interpreter is run in it with chroot; when
    there is none that runs here (an --extra-files tree, no Python yet, another architecture)
    the layout decides, Debian's dist-packages being the last resort."""
    python = os.path.join(target, "usr/bin/python3")
    if os.path.lexists(python):
        own = target.rstrip("/") == ""
        argv = ["/usr/bin/python3", "-I", "-c", SITE_PROBE]
        try:
            result = run(argv if own else ["chroot", target, *argv], check=False, timeout=60)
        except CommandError:
            result = None
        site = result.stdout.strip() if result is not None and result.returncode == 0 else ""
        if site.startswith("/") and "\n" not in site and ".." not in site.split("/"):
            return site, "asked the target's /usr/bin/python3"
    for pattern in ("usr/lib/python3/dist-packages", "usr/lib/python3.*/site-packages"):
        for found in sorted(Path(target).glob(pattern)):
            return "/" + found.relative_to(target).as_posix(), "the target's layout"
    return SITE, "no Python in the target: Debian's path"


def copy_self(root_fd: int, report: InstallReport, root: str = "") -> None:
    """This freshroot into the target's Python path (:func:`target_site` of ``root``), with
    its entry points in /usr/bin."""
    site, how = target_site(root) if root else (SITE, "default")
    # Read through the package's loader: from a source tree, a site directory, or out of a
    # freshroot.pyz (then the target gets the package unzipped, its .pyc files left behind).
    from freshroot.deploy.pyz import package_files

    for rel, data in package_files():
        _write(root_fd, f"{site}/{rel}", data, 0o644)
    for name, target in ENTRY_POINTS.items():
        module, function = target.split(":")
        script = f"#!/usr/bin/python3 -I\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n"
        _write(root_fd, f"/usr/bin/{name}", script.encode(), 0o755)
    report.done.append(f"freshroot copied into {site}/freshroot ({how}), entry points in /usr/bin")


def install(*, target: str, accounts_root: str, config: Sequence[str] | None, copy: bool,
            dry_run: bool = False, machine_id: str | None = None, host_keys: str | None = None) -> InstallReport:
    """Prepare ``target`` (a root, or an --extra-files tree) as the module doc says."""
    report = InstallReport()
    if machine_id is not None and not valid_id(machine_id):
        raise ConfigError(f"--machine-id {machine_id!r}: not a machine id (32 lowercase hex digits, not all zeros)",
                          hint="systemd-id128 new, or python3 -c 'import uuid; print(uuid.uuid4().hex)', makes one")
    keys = read_host_keys(host_keys) if host_keys is not None else []
    os.makedirs(target, exist_ok=True)
    root_fd = ops.open_root(target)
    accounts_fd = ops.open_root(accounts_root)
    try:
        present = _has_declaration(root_fd)
        if config is not None and "-" in config and not present:
            raise UsageError("install copies the --config files into the target: give a file, not - (stdin)")
        if config is None and not present:
            raise UsageError(f"no declaration in {CONFIG_DIR}: give one with --config PATH")
        # What the target will boot with decides: its own declaration when it has one.
        table = load_checked(root_fd, None if present else config, root=target, accounts_fd=accounts_fd)
        # Owners named by users the declaration declares get the ids the users step will
        # give them at the first boot (and those are remembered in storage when it keeps ids).
        resolved = resolve_accounts(accounts_fd, table)
        p = parse(table, resolved.accounts)
        wipe = root_setup.declared_for_install(table, root_fd, target, tree=target != accounts_root)
        # Every path below is as the target sees it; the command's head line names the target.
        identity = install_checks(root_fd, table, machine_id=machine_id, host_keys=keys,
                                  live=os.path.realpath(target) == "/")
        ctx = Context(root_fd, target, dry_run=dry_run)
        if dry_run:
            for a in storage_actions(p, ctx):
                report.done.append("would " + a.describe())
            report.done += [f"would copy host key {t.key.name} -> {t.source}" for t in identity
                            if not t.present]
            return report
        _storage_roots(p, ctx, report)
        if record_ids(root_fd, resolved):
            report.done.append(f"ids of declared users and groups remembered in {ctx.display(resolved.ids_dir)}")
        # No state store: there is nothing to undo on a disk that has not booted, and no
        # /run/freshroot belongs in its image.
        outcome = run_actions(storage_actions(p, ctx), ctx, store=NoRecords())
        report.done += [a.describe() for a in outcome.applied]
        report.failed += [m for _a, m in outcome.failed]
        # The first boot's identity, in storage before it (activation/identity.py).
        report.done += install_identity(root_fd, table, machine_id=machine_id, host_keys=identity,
                                        source_fd=accounts_fd)
        if config is not None:
            copy_declaration(root_fd, config, report)
        _write(root_fd, GENERATOR, GENERATOR_SCRIPT.encode(), 0o755)
        report.done.append(f"generator {GENERATOR}")
        if copy:
            copy_self(root_fd, report, target)
        if target == accounts_root:  # a root, not an --extra-files tree: its declaration is known
            report.done.append(write_generator_cache(root_fd, target))
            report.done.append(write_class_cache(target))
        root_setup.install_root(wipe, target, report.done)
    finally:
        os.close(root_fd)
        os.close(accounts_fd)
    return report


def write_generator_cache(root_fd: int, target: str) -> str:
    """The units the generator will write at boot, cached for the declaration the root has
    now (freshroot.systemd.gencache): rendered as the generator renders them, with the
    interpreter its script names and the target's systemd-tmpfiles."""
    from freshroot import __version__
    from freshroot.config.load import load_declaration
    from freshroot.systemd import gencache
    from freshroot.systemd.generator import render_table

    where = gencache.CACHE
    # The directory first: the key notes what is in the search directories, this one too.
    with ops.mkdir_parents(root_fd, os.path.dirname(gencache.CACHE), 0o755):
        pass
    tmpfiles = gencache.tmpfiles_binary(target)
    key = gencache.key(root_fd, python=GENERATOR_PYTHON, tmpfiles=tmpfiles, version=__version__)
    if key is None:
        return (f"generator cache {where}: not written (the declaration is reached through a symlink or is "
                "too big); the generator reads it at every boot")
    rendered = render_table(load_declaration(root_fd, None, root="/"), None, python=GENERATOR_PYTHON,
                            initrd=False, tmpfiles=tmpfiles)
    data = gencache.encode(key, [(u.name, u.render()) for u in rendered.units],
                           [(link.path, f"../{link.unit}") for link in rendered.links])
    _write(root_fd, gencache.CACHE, data, 0o644)
    return f"generator cache {where} (the units of this declaration, until it changes)"


def write_class_cache(target: str) -> str:
    """The compiled methods of freshroot's dataclasses (freshroot.classcache), written by the
    target's own /usr/bin/python3 (chroot), the interpreter every boot runs: marshal's format
    and byte code are that interpreter's."""
    from freshroot.classcache import CACHE

    where = CACHE
    if not os.path.lexists(os.path.join(target, "usr/bin/python3")):
        return f"class cache {where}: not written (no /usr/bin/python3 in the target yet)"
    argv = ["/usr/bin/python3", "-I", "-m", "freshroot.classcache"]
    try:
        result = run(argv if target.rstrip("/") == "" else ["chroot", target, *argv], check=False, timeout=300)
    except CommandError as e:
        return f"class cache {where}: not written ({e})"
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return f"class cache {where}: not written (the target's python3 -m freshroot.classcache: {why})"
    return f"class cache {where} (compiled dataclass methods: a faster start at every boot)"


def find_installed(target: str) -> str | None:
    """Where the target has freshroot on its Python path, if anywhere we know of."""
    for pattern in ("usr/lib/python3/dist-packages/freshroot", "usr/lib/python3*/site-packages/freshroot",
                    "usr/local/lib/python3*/dist-packages/freshroot", "usr/local/lib/python3*/site-packages/freshroot"):
        for found in sorted(Path(target).glob(pattern)):
            return str(found)
    return None
