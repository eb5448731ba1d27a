"""The composition root: the feature registry (freshroot.features) made into a plan and a check.

Outside every feature package: features know their own steps, parsers and commands; only this
module (and the registry's rows) knows them all.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from freshroot import features
from freshroot.config.table import Table
from freshroot.digest import sha256

if TYPE_CHECKING:
    from freshroot.config.load import Loaded
from freshroot.errors import ConfigError, DeclarationError, Problems
from freshroot.plan.action import Action, Step


def resolve(spec: str) -> Callable[..., Any]:
    """``"module:function"`` -> the function, importing the module only now."""
    module, _, function = spec.partition(":")
    found: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return found


def _deps(after: Sequence[str], earlier: Sequence[Step]) -> tuple[str, ...]:
    """The names in ``after`` that the plan has so far, in the plan's order."""
    if features.EVERYTHING in after:
        return tuple(s.name for s in earlier)
    return tuple(s.name for s in earlier if s.name in after)


def build_plan(declaration: Table, problems: Problems | None = None) -> list[Step]:
    """The whole plan of an apply: each feature's steps, in registry order.

    A builtin step's deps are what its row says it runs after; a step the declaration names
    (an [activation.NAME] snippet) keeps the deps the declaration gives it. A feature whose
    section is wrong raises its ConfigError, or with ``problems`` has it kept there and gets
    steps that fail with it (:func:`_refused`), so that the other features' errors are found
    too and, at boot, the other features still run.
    """
    steps: list[Step] = []
    for feature in features.FEATURES:
        if feature.step_factory is None:
            continue
        try:
            made: list[Step] = resolve(feature.step_factory)(declaration)
        except ConfigError as e:
            if problems is None:
                raise
            problems.errors.append(e)
            made = [_refused(spec, e) for spec in feature.steps]
        for step in made:
            spec = feature.step(step.name)
            if spec is not None:
                step = dataclasses.replace(step, deps=_deps(spec.after, steps))  # noqa: PLW2901
            elif not feature.declared_steps:
                raise AssertionError(f"feature {feature.name} made step {step.name!r}, which its registry "
                                     "row does not declare")
            steps.append(step)
    return steps


def _refused(spec: features.StepSpec, error: ConfigError) -> Step:
    """A builtin step whose section is wrong: it fails when it runs, saying why, and the steps
    after it are skipped as after any failed step (at boot the rest of the plan still runs)."""

    def planner(ctx: object) -> list[Action]:
        raise error

    return Step(spec.name, planner, description=spec.summary, location=error.location)


def check(declaration: Table) -> None:
    """For ``freshroot config check``: every activation-related section parses, and the steps
    order (no unknown dependency, no cycle)."""
    from freshroot.plan.executor import order

    problems = Problems()
    steps = build_plan(declaration, problems)
    problems.raise_all()  # every feature's errors at once; the order only of a valid plan
    order(steps)


def plan_id(declaration: Table, steps: list[Step]) -> str:
    """Identifies the plan for the journal: the declaration's data and the steps' order rules."""
    text = json.dumps({"declaration": declaration.data, "steps": [[s.name, *s.deps] for s in steps]},
                      sort_keys=True, default=str)
    return sha256(text.encode()).hexdigest()[:32]


def problems(table: Table) -> tuple[dict[str, str], list[ConfigError]]:
    """Every section's verdict and every error found, all at once: unknown sections (with
    "did you mean", and the freshroot name of a NixOS/impermanence one), each owner's check
    (a check that collects, as persist's does, gives each of its errors), and for the
    activation-related sections whether the plan's steps order."""
    from freshroot.config.hints import suggest_section

    errors: list[ConfigError] = []
    states: dict[str, str] = {}
    verdicts: dict[str, str] = {}  # check spec -> its verdict: each check runs once
    known = [s.name for s in features.SECTIONS]
    for name in table:
        feature = features.BY_SECTION.get(name)
        if feature is None:
            value = table.raw(name)
            hint = suggest_section(name, value if isinstance(value, dict) else (), known)
            errors.append(table.error(f"unknown section {table.name(name)}", name,
                                      hint=hint or f"the sections are: {', '.join(known)}"))
            continue
        if feature.check is None:
            states[name] = "syntax checked (no parser for this section yet)"
            continue
        if feature.check not in verdicts:
            try:
                resolve(feature.check)(table)
            except ConfigError as e:
                errors.append(e)
                verdicts[feature.check] = "invalid"
            else:
                verdicts[feature.check] = "valid"
        states[name] = verdicts[feature.check]
    if _PLAN_CHECK not in verdicts:  # the plan's order, even when no section asked for it
        try:
            check(table)
        except ConfigError as e:
            errors.append(e)
    return states, errors


_PLAN_CHECK = "freshroot.compose:check"


def check_declaration(table: Table) -> dict[str, str]:
    """The one check every command runs on the declaration before it does anything (no lock,
    no journal, nothing written): ``apply``, ``plan``, ``config check``, ``render``, ``install``,
    ``status``... A DeclarationError with every problem, or the state of each section."""
    states, errors = problems(table)
    if errors:
        raise DeclarationError(errors)
    return states


def check_sections(table: Table) -> dict[str, str]:
    """Refuse unknown top-level keys, run each section's check; the state of each section."""
    return check_declaration(table)


def load_checked_unowned(paths: Sequence[str] | None = None) -> Table:
    """The declaration read on this host (``/`` or ``--config``) and checked, owners left
    unresolved: what ``disk`` and ``bootstrap`` read on a rescue system, whose accounts are not
    the target's (the target's users do not exist yet)."""
    import os

    from freshroot.config.load import load_declaration
    from freshroot.fs.ops import open_root

    root_fd = open_root("/")
    try:
        table = load_declaration(root_fd, paths, root="/")
    finally:
        os.close(root_fd)
    check_declaration(table)
    return table


def load_checked(root_fd: int, paths: Sequence[str] | None = None, *, root: str = "/",
                 accounts_fd: int | None = None) -> Table:
    """The declaration of the root at ``root_fd`` (or ``paths``, ``--config``), loaded and
    checked whole: what every command reads before it acts. Owners are looked up in the
    accounts of ``accounts_fd`` (default: the same root) and the declaration's own users."""
    return load_checked_files(root_fd, paths, root=root, accounts_fd=accounts_fd).table


def load_checked_files(root_fd: int, paths: Sequence[str] | None = None, *, root: str = "/",
                       accounts_fd: int | None = None) -> Loaded:
    """:func:`load_checked`, with the files read and their bytes (``apply`` keeps them as a
    generation)."""
    from freshroot.config.load import load

    loaded = load(root_fd, paths, root=root)
    table = loaded.table
    check_declaration(table)
    if "persist" in table:
        # Owners against the root's accounts and the users the declaration itself declares
        # (with the ids the users step will give them): a name neither has is refused here,
        # every one at once, before anything runs.
        from freshroot.activation.owners import resolve_accounts
        from freshroot.persist.parse import parse

        unknown: list[ConfigError] = []
        parse(table, resolve_accounts(root_fd if accounts_fd is None else accounts_fd, table).accounts,
              skip=unknown.append)
        if unknown:
            raise DeclarationError(unknown)
    return loaded
