"""pyinfra operations for freshroot: ``apply``, ``rollback``, ``confirm``, ``install``, and
``stage`` (the upload the others start with).

Each reads all it needs (facts) before its first command, yields only what is needed, and
calls ``host.noop`` when nothing is. The declaration is uploaded as files into the stage
directory (:data:`freshroot.pyinfra.common.STAGE` below the root), compared by sha256, and
applied from there with ``--config``; facts get the directory and the digest, never the
content. Host data ``freshroot_command`` (shell words, default ``freshroot``) says how to run
freshroot there.
"""

from __future__ import annotations

import shlex
from collections.abc import Generator, Sequence
from typing import Any

from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.api.operation import operation
from pyinfra.context import host

from freshroot.pyinfra.common import STAGE, Part, command, declaration_digest, declared_sections, parts
from freshroot.pyinfra.facts import (
    FreshrootGenerations,
    FreshrootInstalled,
    FreshrootPlan,
    FreshrootStaged,
    current_generation,
    plan_changes,
)
from freshroot.rootpaths import on_host

Commands = Generator[str | StringCommand | FileUploadCommand, Any, None]


def _freshroot() -> str:
    value = host.data.get("freshroot_command", "freshroot")
    return str(value)


def _upload(declaration: Sequence[Part], staged: dict[str, str], root: str, stage: str) -> Commands:
    """The commands that make the stage directory hold exactly ``declaration``: given what
    it holds (``staged``, a fact read by the caller before anything was yielded)."""
    where = on_host(stage, root)
    wanted = {p.name: p.sha256 for p in declaration}
    if staged == wanted:
        return
    yield f"mkdir -p {shlex.quote(where)} && chmod 0700 {shlex.quote(where)}"
    for name in sorted(set(staged) - set(wanted)):
        yield f"rm -f -- {shlex.quote(f'{where}/{name}')}"
    for p in declaration:
        if staged.get(p.name) != p.sha256:
            dest = f"{where}/{p.name}"
            yield FileUploadCommand(p.local, dest, remote_temp_filename=host.get_temp_filename(dest))
            yield f"chmod 0600 {shlex.quote(dest)}"


@operation()
def stage(declaration: Sequence[str], root: str = "/", stage_dir: str = STAGE) -> Commands:
    """Upload the declaration's files (controller paths, in merge order) into the stage
    directory, removing files of an earlier declaration there. Changes nothing else."""
    files = parts(declaration)
    staged = host.get_fact(FreshrootStaged, root=root, stage=stage_dir)
    if staged == {p.name: p.sha256 for p in files}:
        host.noop(f"declaration {declaration_digest(files)[:12]} already staged")
        return
    yield from _upload(files, staged, root, stage_dir)


@operation()
def apply(declaration: Sequence[str], root: str = "/", stage_dir: str = STAGE, confirm_timeout: int | None = None,
          fix: bool = False) -> Commands:
    """Bring the host to the declaration: stage it, then ``freshroot apply`` it. A no-op when
    it is staged, its plan has nothing to do and it is the current generation already."""
    files = parts(declaration)
    digest = declaration_digest(files)
    freshroot = _freshroot()
    staged = host.get_fact(FreshrootStaged, root=root, stage=stage_dir)
    if staged == {p.name: p.sha256 for p in files}:
        # One fact: the plan of the staged declaration, and the generation the root is at.
        plan = host.get_fact(FreshrootPlan, root=root, stage=stage_dir, digest=digest, freshroot=freshroot)
        generation = (plan or {}).get("generation") or {}
        if plan_changes(plan) is False and generation.get("same"):
            host.noop(f"generation {generation.get('current')} is this declaration and its plan has nothing to do")
            return
    yield from _upload(files, staged, root, stage_dir)
    args = ["apply", "--json", "--root", root, "--config", on_host(stage_dir, root)]
    if confirm_timeout:
        args += ["--confirm-timeout", str(confirm_timeout)]
    if fix:
        args.append("--fix")
    yield command(freshroot, *args)


@operation()
def rollback(root: str = "/", stage_dir: str = STAGE, to: int | None = None) -> Commands:
    """``freshroot rollback`` (to generation ``to``, default the previous one). A no-op when
    the host is at that generation already, or has none before the current one."""
    freshroot = _freshroot()
    generations = host.get_fact(FreshrootGenerations, root=root, stage=stage_dir, freshroot=freshroot)
    current = current_generation(generations)
    numbers = [g["number"] for g in (generations or {}).get("generations", [])]
    if current is not None and to is not None and current.get("number") == to:
        host.noop(f"at generation {to} already")
        return
    if current is not None and to is None and not [n for n in numbers if n < current["number"]]:
        host.noop(f"no generation before {current['number']}")
        return
    args = ["rollback", "--json", "--root", root, "--config", on_host(stage_dir, root)]
    if to is not None:
        args += ["--to", str(to)]
    yield command(freshroot, *args)


@operation()
def confirm(root: str = "/", stage_dir: str = STAGE) -> Commands:
    """``freshroot confirm``, when the current generation waits for one."""
    freshroot = _freshroot()
    current = current_generation(host.get_fact(FreshrootGenerations, root=root, stage=stage_dir,
                                               freshroot=freshroot))
    if current is None or (current.get("confirm") or {}).get("state") != "pending":
        host.noop("nothing waits for a confirm")
        return
    yield command(freshroot, "confirm", "--json", "--root", root, "--config", on_host(stage_dir, root))


@operation()
def install(declaration: Sequence[str], root: str = "/mnt", stage_dir: str = STAGE, machine_id: str | None = None,
            host_keys: str | None = None, copy_self: bool = False, hostname: str | None = None) -> Commands:
    """A machine from its rescue system, in the phases of docs/remote-install.md: when the
    declaration has a ``[disk]``, ``freshroot disk apply`` (partitions, mounts under ROOT,
    fstab; ``hostname`` makes the partition UUID seed); when it has an ``[os]``, ``freshroot
    bootstrap --root ROOT``; then ``freshroot install --root ROOT`` with the declaration
    (staged on the host first, in the host's own stage directory: the rescue system's, not
    the new root's), the machine id and a directory of host keys on the host. A no-op when
    the root's /etc/freshroot holds these very files and the generator is installed; an
    install stopped half-way runs again from the start (a second ``disk apply`` finds its
    partitions and changes nothing)."""
    files = parts(declaration)
    freshroot = _freshroot()
    staged = host.get_fact(FreshrootStaged, root="/", stage=stage_dir)
    installed = host.get_fact(FreshrootInstalled, root=root)
    # Where install puts them (freshroot.systemd.install): one file as freshroot.toml, more as conf.d.
    mine = ({"etc/freshroot/freshroot.toml": files[0].sha256} if len(files) == 1 else
            {f"etc/freshroot/conf.d/{i:02d}-{p.name}": p.sha256 for i, p in enumerate(files)})
    generator = "usr/lib/systemd/system-generators/freshroot-generator"
    if generator in installed and all(installed.get(k) == v for k, v in mine.items()):
        host.noop(f"{root} has this declaration and the generator")
        return
    yield from _upload(files, staged, "/", stage_dir)
    sections = declared_sections(files)
    if "disk" in sections:
        yield command(freshroot, "disk", "apply", "--config", stage_dir, "--mount-root", root,
                      *(["--hostname", hostname] if hostname else []))
    if "os" in sections:
        yield command(freshroot, "bootstrap", "--config", stage_dir, "--root", root)
    args = ["install", "--root", root, "--config", stage_dir]
    if machine_id:
        args += ["--machine-id", machine_id]
    if host_keys:
        args += ["--host-keys", host_keys]
    if copy_self:
        args.append("--copy-self")
    yield command(freshroot, *args)
