"""The whole plan of an apply: the builtin steps and the declaration's snippets, as Steps.

Builtins carry NixOS's names so a snippet can say ``deps = ["etc"]`` and mean what it means
on NixOS. Their own order: specialfs, then users (and its alias groups), then persist (its
entries may be owned by declared users, as impermanence's createPersistentStorageDirs runs
after users and groups) and etc (which may give files to declared users), binsh and
usrbinenv.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from freshroot.activation.builtins import binsh_step, parse_environment, usrbinenv_step
from freshroot.activation.etc import etc_step, parse_etc
from freshroot.activation.identity import identity_steps
from freshroot.activation.modprobe import modprobe_step
from freshroot.activation.snippets import parse_snippets, snippet_step
from freshroot.activation.specialfs import specialfs_step
from freshroot.activation.tmpfiles_step import tmpfiles_steps
from freshroot.activation.users import ids_dir, parse_groups, parse_users, users_steps
from freshroot.config.table import Table
from freshroot.persist.steps import build_steps as persist_steps
from freshroot.plan.action import Step
from freshroot.systemd.resetup import resetup_steps

BUILTINS = ("specialfs", "modprobe", "users", "groups", "machine-id", "ssh-host-keys", "persist", "etc", "binsh",
            "usrbinenv", "tmpfiles")


def build_plan(declaration: Table) -> list[Step]:
    environment = parse_environment(declaration.get_table("environment"))
    users = parse_users(declaration.get_table("users"))
    groups = parse_groups(declaration.get_table("groups"))
    # The identity (machine id, SSH host keys) is in storage before persist binds it.
    identity = identity_steps(declaration)
    steps = [
        specialfs_step(),
        modprobe_step(),
        *users_steps(users, groups, ids_dir(declaration)),
        *identity,
        *(dataclasses.replace(s, deps=(*s.deps, "users", "groups", *(i.name for i in identity)))
          for s in persist_steps(declaration)),
        # persist before etc: an [etc] file inside a persisted /etc directory lands in storage
        etc_step(parse_etc(declaration.get_table("etc")),
                 deps=("users", "groups", *(["persist"] if "persist" in declaration else []))),
        binsh_step(environment),
        usrbinenv_step(environment),
    ]
    # The tmpfiles create phase, once owners exist and persisted paths are in place.
    steps += tmpfiles_steps(declaration, [s.name for s in steps if s.name in ("users", "groups", "persist", "etc")])
    names = {s.name for s in steps} | set(BUILTINS)  # reserved even when a builtin has nothing to do
    steps += [snippet_step(s) for s in parse_snippets(declaration.get_table("activation"), names)]
    # Last: tmpfiles.d applied again once everything it may refer to is in place.
    steps += resetup_steps(declaration, [s.name for s in steps])
    return steps


def check(declaration: Table) -> None:
    """For ``freshroot config check``: every activation-related section parses, and the steps
    order (no unknown dependency, no cycle)."""
    from freshroot.plan.executor import order

    order(build_plan(declaration))


def plan_id(declaration: Table, steps: list[Step]) -> str:
    """Identifies the plan for the journal: the declaration's data and the steps' order rules."""
    text = json.dumps({"declaration": declaration.data, "steps": [[s.name, *s.deps] for s in steps]},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
