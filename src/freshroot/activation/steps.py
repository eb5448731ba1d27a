"""Activation's steps as the feature registry (freshroot.features) names them: each function
takes the whole declaration and returns the steps of one feature. Their deps are set by
freshroot.compose.build_plan from the registry rows.
"""

from __future__ import annotations

from freshroot.activation.builtins import binsh_step, parse_environment, usrbinenv_step
from freshroot.activation.etc import etc_step, parse_etc
from freshroot.activation.identity import host_key_step, machine_id_step
from freshroot.activation.modprobe import modprobe_step
from freshroot.activation.snippets import parse_snippets, snippet_step
from freshroot.activation.specialfs import specialfs_step
from freshroot.activation.tmpfiles_step import tmpfiles_steps
from freshroot.activation.users import ids_dir, parse_groups, parse_users, users_steps
from freshroot.config.table import Table
from freshroot.errors import Problems
from freshroot.features import BUILTINS
from freshroot.plan.action import Step


def specialfs(declaration: Table) -> list[Step]:
    return [specialfs_step()]


def modprobe(declaration: Table) -> list[Step]:
    return [modprobe_step()]


def users(declaration: Table) -> list[Step]:
    problems = Problems()  # [users] and [groups] both said, not only the first wrong one
    users, groups = [], []
    with problems:
        users = parse_users(declaration.get_table("users"))
    with problems:
        groups = parse_groups(declaration.get_table("groups"))
    problems.raise_all()
    return users_steps(users, groups, ids_dir(declaration))


def identity(declaration: Table) -> list[Step]:
    """The machine id and SSH host keys, into storage before persist binds or links them."""
    return [*machine_id_step(declaration), *host_key_step(declaration)]


def etc(declaration: Table) -> list[Step]:
    return [etc_step(parse_etc(declaration.get_table("etc")))]


def environment(declaration: Table) -> list[Step]:
    env = parse_environment(declaration.get_table("environment"))
    return [binsh_step(env), usrbinenv_step(env)]


def tmpfiles(declaration: Table) -> list[Step]:
    return tmpfiles_steps(declaration, ())


def snippets(declaration: Table) -> list[Step]:
    """The declaration's [activation.NAME] snippets; no snippet may take a builtin's name."""
    return [snippet_step(s) for s in parse_snippets(declaration.get_table("activation"), BUILTINS)]
