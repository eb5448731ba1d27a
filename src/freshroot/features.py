"""The feature registry: one row per feature, and everything that lists features comes from it.

A feature is a package (persist, tmpfiles, image...) or part of one, and one :class:`Feature`
row below naming

- the top-level sections of the declaration it owns, with the docs page and a summary
  (``freshroot config check`` refuses any other section; docs/configuration.md's table of
  sections is checked against these rows);
- its ``check``: ``"module:function"`` taking the whole declaration, run by ``config check``;
- its step factory (``"module:function"``, declaration -> steps of the plan), the builtin step
  names it provides and what each runs after (``freshroot.compose.build_plan`` calls the
  factories in row order and sets each builtin step's deps from here; the names are reserved,
  no snippet may take one);
- whether it has subcommands: then its package has ``commands.py`` (argparse only, imported
  for ``--help``) and ``handlers.py`` (imported when the subcommand runs), and the CLI lists
  the commands in row order.

Adding a feature is one package and one row (docs/ARCHITECTURE.md walks through it). The
composition that turns rows into a plan lives in freshroot.compose, outside every feature.

Everything here is a string, so ``freshroot --help`` imports this module and nothing else of
freshroot's features. For the same reason the rows are small hand-written frozen records,
not dataclasses: ``dataclasses`` imports ``inspect``, about 5 ms of start-up
(tests/test_startup_imports.py forbids both).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

# In StepSpec.after: every step the plan has before this one (snippets included).
EVERYTHING = "*"


class _Frozen:
    """A record whose fields (its __slots__) are set once, by __init__; compared by value."""

    __slots__: tuple[str, ...] = ()

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen; cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen; cannot delete {name}")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frozen) and type(other) is type(self) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__slots__)})"


class Section(_Frozen):
    """A top-level section of the declaration: ``[name]`` or ``[name.<key>]``."""

    __slots__ = ("doc", "heading", "name", "summary")
    name: str
    heading: str  # how docs/configuration.md writes it: [persist."/storage"], [users.<name>]
    doc: str  # the page under docs/ that describes it
    summary: str  # what it declares (the docs table's middle column)

    def __init__(self, name: str, heading: str, doc: str, summary: str) -> None:
        self._set(name=name, heading=heading, doc=doc, summary=summary)


class StepSpec(_Frozen):
    """A builtin step: its name (NixOS's, where NixOS has one) and what it runs after.

    ``after`` names builtin steps; those the plan has become the step's deps (a feature with
    nothing declared may have no step). :data:`EVERYTHING` means every step before it."""

    __slots__ = ("after", "name", "summary")
    name: str
    after: tuple[str, ...]
    summary: str

    def __init__(self, name: str, after: tuple[str, ...] = (), summary: str = "") -> None:
        self._set(name=name, after=after, summary=summary)


class Feature(_Frozen):
    __slots__ = (
        "check",
        "commands",
        "declared_steps",
        "name",
        "package",
        "records",
        "sections",
        "step_factory",
        "steps",
        "summary",
    )
    name: str
    package: str  # the package that holds its code ("freshroot.persist")
    summary: str
    sections: tuple[Section, ...]
    check: str | None  # "module:function", (declaration Table) -> anything; raises ConfigError
    steps: tuple[StepSpec, ...]  # the builtin steps its factory makes, in the plan's order
    step_factory: str | None  # "module:function", (declaration Table) -> list[Step]
    declared_steps: bool  # the factory also makes steps the declaration names ([activation.NAME])
    commands: bool  # package.commands registers subcommands; package.handlers implements them
    records: tuple[str, ...]  # modules defining the state-store record types of its changes (for undo)

    def __init__(self, name: str, package: str, summary: str, *, sections: tuple[Section, ...] = (),
                 check: str | None = None, steps: tuple[StepSpec, ...] = (), step_factory: str | None = None,
                 declared_steps: bool = False, commands: bool = False, records: tuple[str, ...] = ()) -> None:
        self._set(name=name, package=package, summary=summary, sections=sections, check=check, steps=steps,
                  step_factory=step_factory, declared_steps=declared_steps, commands=commands, records=records)

    @property
    def commands_module(self) -> str | None:
        return f"{self.package}.commands" if self.commands else None

    @property
    def handlers_module(self) -> str | None:
        return f"{self.package}.handlers" if self.commands else None

    def step(self, name: str) -> StepSpec | None:
        return next((s for s in self.steps if s.name == name), None)


# The activation-related sections are parsed together, and their steps ordered, by one check:
# that is what an apply would do first.
_PLAN_CHECK = "freshroot.compose:check"
_STEPS = "freshroot.activation.steps"

# Row order is the plan's order (factories are called in it, so plan ids are stable) and the
# order --help lists commands in. Rows without steps may sit anywhere.
FEATURES: tuple[Feature, ...] = (
    Feature("plan", "freshroot.plan", "the one plan: order, run or dry-run every step; a journal and a lock",
            commands=True),
    Feature("generations", "freshroot.generations", "applied declarations kept as numbered generations; "
            "rollback, and a confirm timer", commands=True),
    Feature("specialfs", "freshroot.activation", "/proc, /sys and /dev in an offline root",
            steps=(StepSpec("specialfs", summary="/proc, /sys and /dev in an offline root"),),
            step_factory=f"{_STEPS}:specialfs", records=("freshroot.activation.specialfs",)),
    Feature("modprobe", "freshroot.activation", "the kernel's module loader pointed at the root's modprobe",
            steps=(StepSpec("modprobe", ("specialfs",), "/proc/sys/kernel/modprobe points at the root's modprobe"),),
            step_factory=f"{_STEPS}:modprobe"),
    Feature("users", "freshroot.activation", "users and groups in passwd, group, shadow and gshadow",
            sections=(
                Section("users", "[users.<name>]", "activation.md",
                        "users: passwd and shadow entries, stable ids, home directories"),
                Section("groups", "[groups.<name>]", "activation.md", "groups: group and gshadow entries, members"),
            ),
            check=_PLAN_CHECK,
            steps=(StepSpec("users", ("specialfs",), "declared users and groups"),
                   StepSpec("groups", ("users",), "(done by users)")),
            step_factory=f"{_STEPS}:users", records=("freshroot.activation.users",)),
    # The identity a wiped root must keep from its first boot: in storage before persist links it.
    Feature("identity", "freshroot.activation", "the machine id and SSH host keys, kept in storage",
            steps=(StepSpec("machine-id", ("specialfs",), "/etc/machine-id from storage"),
                   StepSpec("ssh-host-keys", ("specialfs",), "SSH host keys generated into storage")),
            step_factory=f"{_STEPS}:identity"),
    # After users and groups: its entries may be owned by declared users, as impermanence's
    # createPersistentStorageDirs runs after users and groups.
    Feature("persist", "freshroot.persist", "directories and files kept across boots, bound or linked from storage",
            sections=(Section("persist", '[persist."/storage"]', "persistence.md",
                              "directories and files kept across boots in a storage such as `/persist`: bind "
                              "mounts, symlinked files, owners and modes, presets (`include`), `users.<name>` "
                              "home contents"),),
            check="freshroot.persist.parse:check",
            steps=(StepSpec("persist", ("users", "groups", "machine-id", "ssh-host-keys"),
                            "bind or link persisted directories and files from storage"),),
            step_factory="freshroot.persist.steps:build_steps", commands=True,
            records=("freshroot.persist.actions",)),
    Feature("config", "freshroot.config", "the declaration: find, merge, show and check it", commands=True),
    Feature("etc", "freshroot.activation", "files written or linked into /etc",
            sections=(Section("etc", '[etc."path"]', "activation.md", "files written or linked into `/etc`"),),
            check=_PLAN_CHECK,
            # After persist: an [etc] file inside a persisted /etc directory lands in storage.
            steps=(StepSpec("etc", ("users", "groups", "persist"), "files declared under [etc]"),),
            step_factory=f"{_STEPS}:etc", records=("freshroot.activation.etc",)),
    Feature("environment", "freshroot.activation", "/bin/sh and /usr/bin/env",
            sections=(Section("environment", "[environment]", "activation.md",
                              "`/bin/sh` and `/usr/bin/env` of the root (the `binsh` and `usrbinenv` steps)"),),
            check=_PLAN_CHECK,
            steps=(StepSpec("binsh", ("specialfs",), "/bin/sh"),
                   StepSpec("usrbinenv", ("specialfs",), "/usr/bin/env")),
            step_factory=f"{_STEPS}:environment", records=("freshroot.activation.builtins",)),
    # The create phase once owners exist and persisted paths are in place.
    Feature("tmpfiles", "freshroot.tmpfiles", "systemd-tmpfiles, exactly; the [tmpfiles] rules",
            sections=(Section("tmpfiles", "[tmpfiles.*]", "tmpfiles.md",
                              "tmpfiles.d rules, with exactly systemd's meaning"),),
            check="freshroot.tmpfiles.declaration:check_declaration",
            steps=(StepSpec("tmpfiles", ("users", "groups", "persist", "etc"),
                            "apply tmpfiles.d (offline root, or no systemd)"),),
            step_factory=f"{_STEPS}:tmpfiles", commands=True),
    Feature("root", "freshroot.root", "the root wiped at every boot, old roots kept for rescue",
            sections=(Section("root", "[root]", "root-wipe.md",
                              "how the root is wiped at every boot (`wipe = \"btrfs\"`: a fresh snapshot of a blank "
                              "subvolume, old roots kept by `keep`; `wipe = \"overlay\"`; `wipe = \"tmpfs\"`), for "
                              "initramfs-tools, dracut and mkinitcpio"),),
            check="freshroot.root.model:check",
            steps=(StepSpec("root", (), "[root]: the settings the initrd reads to wipe the root"),),
            step_factory="freshroot.root.setup:root_steps", commands=True),
    Feature("activation", "freshroot.activation", "snippets run to bring the machine up",
            sections=(Section("activation", "[activation.<name>]", "activation.md",
                              "snippets of shell, ordered by `deps`, run to bring the machine up; dry activation"),),
            check=_PLAN_CHECK, step_factory=f"{_STEPS}:snippets", declared_steps=True,
            records=("freshroot.activation.snippets",)),
    Feature("image", "freshroot.image", "portable service images",
            sections=(Section("portable", "[portable.<name>]", "images.md", "portable service images to build"),),
            check="freshroot.image.model:parse_portable", commands=True),
    # Last: tmpfiles.d applied again on a live systemd once everything it may refer to is there.
    Feature("systemd", "freshroot.systemd", "units, the generator, install and the boot commands",
            steps=(StepSpec("tmpfiles-resetup", (EVERYTHING,), "restart freshroot-tmpfiles-resetup.service"),),
            step_factory="freshroot.systemd.resetup:resetup_steps", commands=True),
    Feature("shell", "freshroot.shell", "shell completion for bash, zsh and fish, written from the parsers",
            commands=True),
    # Installing a machine from its rescue system (docs/remote-install.md): no steps of the plan.
    Feature("facts", "freshroot.facts", "what a machine is: disks by id, memory, rescue system, tools",
            commands=True),
    Feature("disk", "freshroot.disk", "the install disk partitioned by systemd-repart, mounted, its fstab",
            sections=(Section("disk", "[disk]", "remote-install.md",
                              "the install disk (by-id name, serial, size) and its partitions, made by "
                              "systemd-repart with a per-host seed"),),
            check="freshroot.disk.model:check", commands=True),
    Feature("os", "freshroot.osroot", "the OS put on a new root (bootstrapper or image) and its bootloader",
            sections=(Section("os", "[os]", "remote-install.md",
                              "the OS root a new disk gets (an image, mmdebstrap, debootstrap, dnf, pacstrap) and "
                              "its bootloader"),),
            check="freshroot.osroot.model:check", commands=True),
    Feature("deploy", "freshroot.deploy", "fleets over SSH through pyinfra: plan, apply, install, rollback",
            commands=True),
)

BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
# Section name -> the feature that owns it (what ``config check`` looks sections up in).
BY_SECTION: dict[str, Feature] = {s.name: f for f in FEATURES for s in f.sections}
SECTIONS: tuple[Section, ...] = tuple(s for f in FEATURES for s in f.sections)
# Every builtin step name: reserved, so no [activation.NAME] snippet may take one.
BUILTINS: tuple[str, ...] = tuple(s.name for f in FEATURES for s in f.steps)
# Modules whose register(subparsers) adds subcommands, in the order --help lists them.
COMMAND_MODULES: tuple[str, ...] = tuple(f"{f.package}.commands" for f in FEATURES if f.commands)
