"""The units freshroot's generator writes, from the declaration's model.

One function, :func:`render`, used by the generator at boot and by ``freshroot render
--units``, so the two cannot disagree. What it makes (docs/systemd.md has the whole picture):

- ``freshroot-prepare.service``: creates the storage directories (and mount points) with the
  declared owners and modes before any mount, and says clearly when a storage is missing;
- one ``.mount`` unit per persisted directory (a bind mount of the storage path);
- ``freshroot-persist-files.service``: all persisted files, bound or symlinked on start,
  exactly that undone on stop;
- ``freshroot-tmpfiles-setup.service`` and ``freshroot-tmpfiles-resetup.service``;
- in the initrd (``SYSTEMD_IN_INITRD=1``) only the mounts of ``early`` paths, below /sysroot.

Each unit is pulled in by a ``<target>.requires`` or ``<target>.wants`` symlink: requires
for a storage that must be there, wants for a ``degraded`` one, so a missing degraded
storage fails its units without stopping the boot.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from freshroot.fs.ops import open_root
from freshroot.persist.model import Entry, Kind, Persistence, Storage
from freshroot.systemd.escape import unit_name_from_path
from freshroot.systemd.mounts import BindMount
from freshroot.systemd.names import ACTIVATE, FILES, PREPARE, TMPFILES_RESETUP, TMPFILES_SETUP, Engine
from freshroot.systemd.output import Dependency, UnitDirectory
from freshroot.systemd.unit import UnitFile, command

SYSROOT = "/sysroot"
DOCS = "man:freshroot-generator(8) man:freshroot(8)"  # the man pages the packages install (man/)


@dataclass(frozen=True, slots=True)
class Options:
    """How the units call freshroot, and what else the declaration asks of them."""

    # The generator's own interpreter, so the units run the same freshroot the generator is;
    # -I: neither the unit's environment (PYTHONPATH...) nor its working directory is searched.
    python: str = "/usr/bin/python3"
    systemd_tmpfiles: str = "/usr/bin/systemd-tmpfiles"
    engine: Engine | None = None  # None: no tmpfiles units
    in_initrd: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    """A ``<target>.<kind>/<unit>`` symlink that pulls ``unit`` into ``target``."""

    target: str
    kind: str  # "wants" or "requires"
    unit: str

    @property
    def path(self) -> str:
        return f"{self.target}.{self.kind}/{self.unit}"


@dataclass
class Rendered:
    """The units and links the generator writes."""
    units: list[UnitFile] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    def names(self) -> list[str]:
        return [u.name for u in self.units]


def _pull(degraded: bool) -> str:
    return "wants" if degraded else "requires"


def prefix_mounts(path: str) -> list[str]:
    """The mount units of ``path`` and each of its parents (not "/"): what After= needs to
    order after whichever of them is a mount, without requiring any of them."""
    parts = path.strip("/").split("/")
    return [unit_name_from_path("/" + "/".join(parts[:i]), ".mount") for i in range(1, len(parts) + 1)]


# freshroot-activate.service's command: `freshroot apply --boot` without runpy and the
# command line's parser (freshroot.bootstart says why).
BOOT_COMMAND = "import sys; from freshroot.bootstart import main; sys.exit(main())"


def _program(options: Options, *args: str) -> list[str]:
    return [options.python, "-I", "-m", "freshroot", *args]


def _storage_checks(unit: UnitFile, s: Storage, prefix: str, source: str) -> None:
    """Conditions that fail the unit, naming the storage, when it is not usable."""
    u = unit.section("Unit")
    if s.require_mount:
        u.add("AssertPathIsMountPoint", prefix + s.path)
    u.add("AssertPathIsDirectory", source)


def mount_unit(e: Entry, s: Storage, *, prefix: str = "") -> UnitFile:
    """The bind mount of one persisted directory (mounts.BindMount), with what ties it to
    freshroot-prepare and fails it, naming the storage, when the storage is not there."""
    early = " (early, in the initrd)" if prefix else ""
    mount = BindMount(e.source, e.path, options=e.options,
                      before=("initrd-fs.target",) if prefix else ("local-fs.target",),
                      description=f"Persisted {e.path} from storage {e.storage}{early}", sysroot=prefix)
    unit = mount.unit(comment=f"Written by freshroot-generator: {e.path} persisted in {e.storage}"
                      + (f"\ndeclared at {e.location}" if e.location else ""))
    u = unit.section("Unit")
    u.add("Documentation", DOCS)
    if not prefix:
        u.add("Wants", PREPARE)
        u.add("After", PREPARE)
    else:
        # Not before /sysroot is final: the storage is an x-initrd.mount of /sysroot's fstab,
        # which systemd only knows once initrd-parse-etc.service has reloaded it (the first
        # generator run has no /sysroot), and a volatile root (freshroot-root-volatile,
        # systemd-volatile-root) replaces the /sysroot mount before initrd-root-fs.target.
        u.add("After", "initrd-parse-etc.service")
    _storage_checks(unit, s, prefix, prefix + e.source)
    return unit


def prepare_unit(p: Persistence, options: Options) -> UnitFile:
    unit = UnitFile(PREPARE, comment="Written by freshroot-generator: storage directories before the mounts")
    u = unit.section("Unit")
    u.add("Description", "Create freshroot's storage directories with their declared owners")
    u.add("Documentation", DOCS)
    u.add("DefaultDependencies", "no")
    # After, not Requires, the storages' mounts: when one is missing this unit still runs and
    # says so in words, instead of failing on a dependency.
    after = ["systemd-remount-fs.service", "local-fs-pre.target"]
    for s in p.storages:
        after += prefix_mounts(s.path)
    u.add("After", *dict.fromkeys(after))
    u.add("Before", "local-fs.target", "umount.target")
    u.add("Conflicts", "umount.target")
    svc = unit.section("Service")
    svc.add("Type", "oneshot")
    svc.add("RemainAfterExit", "yes")
    svc.add("ExecStart", command(_program(options, "persist-prepare")))
    svc.add("StandardOutput", "journal+console")
    return unit


def files_unit(p: Persistence, mounts: Sequence[str], options: Options) -> UnitFile:
    files = [e for e in p.entries() if e.kind is Kind.FILE]
    unit = UnitFile(FILES, comment="Written by freshroot-generator: every persisted file, in one service:\n"
                    + "\n".join(f"  {e.path} from {e.storage}" for e in files))
    u = unit.section("Unit")
    u.add("Description", f"Bind or link {len(files)} persisted file{'s' if len(files) != 1 else ''}")
    u.add("Documentation", DOCS)
    u.add("DefaultDependencies", "no")
    u.add("Wants", PREPARE)
    after = [PREPARE, "systemd-remount-fs.service", *mounts]
    for s in p.storages:
        after += prefix_mounts(s.path)
    u.add("After", *dict.fromkeys(after))
    u.add("Before", "local-fs.target", "umount.target")
    u.add("Conflicts", "umount.target")
    svc = unit.section("Service")
    svc.add("Type", "oneshot")
    svc.add("RemainAfterExit", "yes")
    svc.add("ExecStart", command(_program(options, "persist-files", "--start")))
    svc.add("ExecStop", command(_program(options, "persist-files", "--stop")))
    svc.add("StandardOutput", "journal+console")
    return unit


def tmpfiles_argv(options: Options, *flags: str) -> list[str]:
    match options.engine:
        case Engine.SYSTEMD:
            return [options.systemd_tmpfiles, *flags]
        case Engine.FRESHROOT | None:
            return _program(options, "tmpfiles", *flags)


def tmpfiles_units(options: Options) -> list[UnitFile]:
    """Setup at boot (as systemd-tmpfiles-setup.service) and the re-setup ``freshroot apply``
    restarts (as NixOS's systemd-tmpfiles-resetup.service). The declaration's [tmpfiles]
    rules are rendered into /run/tmpfiles.d first, so they follow the declaration."""
    render = command(_program(options, "tmpfiles", "render", "--output", "/run/tmpfiles.d"))
    setup = UnitFile(TMPFILES_SETUP, comment="Written by freshroot-generator")
    u = setup.section("Unit")
    u.add("Description", f"Create volatile files and directories ({options.engine} tmpfiles)")
    u.add("Documentation", DOCS, "man:tmpfiles.d(5)")
    u.add("DefaultDependencies", "no")
    u.add("After", "local-fs.target", FILES, "systemd-sysusers.service", "systemd-journald.service")
    u.add("Before", "sysinit.target", "shutdown.target", "systemd-tmpfiles-setup.service")
    u.add("Conflicts", "shutdown.target")
    u.add("RefuseManualStop", "yes")
    svc = setup.section("Service")
    svc.add("Type", "oneshot")
    svc.add("RemainAfterExit", "yes")
    svc.add("ExecStartPre", render)
    # As systemd-tmpfiles-setup.service: /dev is systemd-tmpfiles-setup-dev's.
    svc.add("ExecStart", command(tmpfiles_argv(options, "--create", "--remove", "--boot", "--exclude-prefix=/dev")))
    svc.add("SuccessExitStatus", "DATAERR CANTCREAT")

    resetup = UnitFile(TMPFILES_RESETUP, comment="Written by freshroot-generator; `freshroot apply` restarts it")
    u = resetup.section("Unit")
    u.add("Description", f"Re-apply tmpfiles.d after a change ({options.engine} tmpfiles)")
    u.add("Documentation", DOCS, "man:tmpfiles.d(5)")
    u.add("DefaultDependencies", "no")
    u.add("After", "local-fs.target", TMPFILES_SETUP, ACTIVATE)
    u.add("Before", "sysinit.target", "shutdown.target")
    u.add("Conflicts", "shutdown.target")
    svc = resetup.section("Service")
    svc.add("Type", "oneshot")
    svc.add("RemainAfterExit", "yes")
    svc.add("ExecStartPre", render)
    svc.add("ExecStart", command(tmpfiles_argv(options, "--create", "--remove", "--exclude-prefix=/dev")))
    svc.add("SuccessExitStatus", "DATAERR CANTCREAT")
    return [setup, resetup]


def activate_unit(storages: Sequence[str], options: Options) -> UnitFile:
    """The declaration's whole activation at boot, in one process (systemd/activate.py), where
    NixOS runs its activation script: once the root and the storages are mounted, before
    sysinit.target and the early services that read what it makes (persisted /var/log for the
    journal flush, /var/lib/systemd for the random seed, /etc/machine-id for its commit)."""
    unit = UnitFile(ACTIVATE, comment="Written by freshroot-generator: `freshroot apply --boot` at every boot")
    u = unit.section("Unit")
    u.add("Description", "Apply the freshroot declaration (users, persistence, /etc, snippets, tmpfiles)")
    u.add("Documentation", DOCS)
    u.add("DefaultDependencies", "no")
    # After, not Requires, the storages' mounts (a nofail mount is not ordered before
    # local-fs.target): a missing storage is said in words, and a degraded one boots on.
    after = ["systemd-remount-fs.service", "local-fs.target", "systemd-journald.socket"]
    for path in storages:
        after += prefix_mounts(path)
    u.add("After", *dict.fromkeys(after))
    u.add("Before", "sysinit.target", "systemd-tmpfiles-setup.service", "systemd-journal-flush.service",
          "systemd-random-seed.service", "systemd-machine-id-commit.service", "systemd-update-utmp.service",
          "shutdown.target")
    u.add("Conflicts", "shutdown.target")
    svc = unit.section("Service")
    svc.add("Type", "oneshot")
    svc.add("RemainAfterExit", "yes")
    # `freshroot apply --boot`, started without runpy and the command line's parser
    svc.add("ExecStart", command([options.python, "-I", "-c", BOOT_COMMAND]))
    svc.add("StandardOutput", "journal+console")
    svc.add("SyslogIdentifier", "freshroot")
    return unit


def render(p: Persistence, options: Options) -> Rendered:
    if options.in_initrd:
        return render_initrd(p)
    return render_main([s.path for s in p.storages], options)


def render_initrd(p: Persistence) -> Rendered:
    """In the initrd: the bind mounts of ``early`` directories, below /sysroot."""
    out = Rendered()
    for s in p.storages:
        for e in s.entries:
            if e.early and e.kind is Kind.DIRECTORY:
                unit = mount_unit(e, s, prefix=SYSROOT)
                out.units.append(unit)
                out.links.append(Link("initrd-fs.target", _pull(s.degraded), unit.name))
    return out


def render_main(storages: Sequence[str], options: Options) -> Rendered:
    """In the main system: the activation, ordered after the storages' mounts (their paths
    are all it needs of the declaration), and the tmpfiles re-setup."""
    out = Rendered()
    # One service does it all, bind mounts included, with the planner `apply` uses, so boot
    # and apply decide the same for every path (docs/systemd.md says why not mount units).
    out.units.append(activate_unit(storages, options))
    out.links.append(Link("sysinit.target", "wants", ACTIVATE))
    if options.engine is not None:
        # The activation applies tmpfiles.d at boot; `freshroot apply` restarts the re-setup.
        out.units += [u for u in tmpfiles_units(options) if u.name == TMPFILES_RESETUP]
    return out


def write(rendered: Rendered, directory: str) -> list[str]:
    """Write the units and their symlinks into ``directory`` (a generator output directory);
    returns the paths written, relative to it."""
    return write_directory(rendered, directory).written


def write_directory(rendered: Rendered, directory: str, *, manifest: bool = False) -> UnitDirectory:
    """:func:`write`, returning what was done. ``manifest`` (``render --units``): also remove
    what the last render wrote there and this one does not, and remember what this one wrote
    (freshroot.systemd.manifest)."""
    from freshroot.systemd import manifest as listing

    os.makedirs(directory, exist_ok=True)
    dir_fd = open_root(directory)
    try:
        before = listing.load(dir_fd) if manifest else {}
        out = UnitDirectory(dir_fd)
        for unit in rendered.units:
            out.write(unit)
        for link in rendered.links:
            out.add_dependency(link.target, Dependency(link.kind), link.unit)
        if manifest:
            out.removed, out.kept = listing.prune(dir_fd, before, out.marks)
            listing.save(dir_fd, out.marks)
        return out
    finally:
        os.close(dir_fd)
