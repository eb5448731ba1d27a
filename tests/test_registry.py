"""The feature registry (freshroot.features) is the only list of features: a section, a command
or a builtin step added anywhere else fails here."""

from __future__ import annotations

import argparse
import ast
import inspect
import tomllib
from pathlib import Path

import pytest

from freshroot import cli, compose, features
from freshroot.config.table import Table
from freshroot.errors import ConfigError
from freshroot.tmpfiles import commands as tmpfiles_commands

SRC = Path(__file__).parents[1] / "src" / "freshroot"
# Names a command module must not have: commands.py + handlers.py is the one layout.
OTHER_COMMAND_NAMES = ("cli.py", "command.py", "entry.py", "main.py", "apply.py")
# Kept on purpose, each with its reason in its docstring and in docs/ARCHITECTURE.md.
ALLOWED = {
    "cli.py",  # freshroot/cli.py: the top-level parser and dispatcher itself
}

FULL = """\
[persist."/persist"]
directories = ["/var/log"]
include = ["machine-id", "ssh-host-keys"]
[users.alice]
[groups.staff]
[etc."motd"]
text = "hi"
[environment]
binsh = "/usr/bin/dash"
[tmpfiles.rules]
rules = ["d /run/x 0755 - - -"]
[activation.hello]
text = "true"
deps = ["etc"]
[portable.app]
version = "1"
[root]
wipe = "none"
[disk.partitions.root]
type = "root"
format = "ext4"
mount = "/"
[os]
engine = "pacstrap"
"""


def declaration(text: str) -> Table:
    return Table(tomllib.loads(text), (), "test.toml", {})


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def test_rows_are_well_formed() -> None:
    assert len({f.name for f in features.FEATURES}) == len(features.FEATURES)
    assert len(features.BUILTINS) == len(set(features.BUILTINS)), "a step name provided twice"
    assert len(features.SECTIONS) == len({s.name for s in features.SECTIONS}), "a section owned twice"
    known = modules()
    for feature in features.FEATURES:
        assert feature.package in known, f"{feature.name}: no package {feature.package}"
        for spec in (feature.check, feature.step_factory):
            if spec is not None:
                fn = compose.resolve(spec)
                assert next(iter(inspect.signature(fn).parameters)) == "declaration", spec
        earlier: set[str] = set()
        for step in feature.steps:  # a step runs after steps of earlier rows, or earlier ones of its own
            assert set(step.after) - {features.EVERYTHING} <= earlier | set(features.BUILTINS), step
            earlier.add(step.name)
        assert not (feature.steps or feature.declared_steps) or feature.step_factory, feature.name


def test_rows_reject_changes() -> None:
    row = features.FEATURES[0]
    with pytest.raises(AttributeError, match="frozen"):
        row.name = "other"
    assert row == features.Feature(row.name, row.package, row.summary, commands=row.commands)
    assert row != features.Feature(row.name, row.package, "else", commands=row.commands)


# --- commands ---------------------------------------------------------------------------------


def test_command_packages_have_one_layout() -> None:
    for feature in features.FEATURES:
        directory = SRC.joinpath(*feature.package.split(".")[1:])
        assert (directory / "commands.py").exists() == feature.commands, feature.name
        assert (directory / "handlers.py").exists() == feature.commands, feature.name
    misnamed = {str(p.relative_to(SRC)) for name in OTHER_COMMAND_NAMES for p in SRC.rglob(name)}
    assert misnamed == ALLOWED


def test_only_registry_command_modules_add_commands() -> None:
    """A module that adds a subcommand (add_command/add_parser) is a row's commands module."""
    adders = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute | ast.Name)
                    and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
                    in ("add_command", "add_parser", "add_subparsers")):
                adders.add(name)
    assert adders == {"freshroot.cli", *features.COMMAND_MODULES}


def _handlers(parser: argparse.ArgumentParser, found: list[tuple[str, str]], prog: str) -> None:
    handler = parser.get_default("handler")
    if handler is not None:
        found.append((prog, handler))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _handlers(sub, found, f"{prog} {name}")


def test_every_command_is_a_row_and_its_handler_is_in_the_rows_handlers() -> None:
    names = cli._Names()
    owner: dict[str, features.Feature] = {}
    for feature in features.FEATURES:
        if feature.commands_module is not None:
            before = len(names.commands)
            __import__(feature.commands_module, fromlist=["register"]).register(names)
            for name, _ in names.commands[before:]:
                owner[name] = feature
    assert len(owner) == len(names.commands) >= 10
    listed = [a for a in cli.build_parser([])._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(listed[0].choices) == list(owner), "the CLI lists other commands than the registry's"
    for command, feature in owner.items():
        found: list[tuple[str, str]] = []
        _handlers(cli.build_parser([command]), found, "freshroot")
        mine = [(prog, h) for prog, h in found if prog.split()[1] == command]
        assert mine, command
        for prog, handler in mine:
            assert handler.partition(":")[0] == feature.handlers_module, (prog, handler)
            assert callable(compose.resolve(handler)), handler
    standalone = tmpfiles_commands.build_parser().get_default("handler")
    assert standalone.partition(":")[0] == features.BY_NAME["tmpfiles"].handlers_module
    assert callable(compose.resolve(standalone))


# --- sections ---------------------------------------------------------------------------------


def test_every_registry_section_is_accepted_and_nothing_else() -> None:
    for section in features.SECTIONS:
        assert compose.check_sections(declaration(f"[{section.name}]\n")) == {section.name: "valid"}
    with pytest.raises(ConfigError, match="unknown section"):
        compose.check_sections(declaration("[persits]\n"))
    assert set(declaration(FULL)) == {s.name for s in features.SECTIONS}  # FULL below uses every one


def _top_level_keys(tree: ast.AST) -> set[str]:
    """Keys read from a variable named ``declaration`` (the whole declaration, by convention:
    checks and step factories take it under that name): declaration.get_table("x"),
    declaration.location("x"), "x" in declaration, ..."""
    keys = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "declaration"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            keys.add(node.args[0].value)
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
                and isinstance(node.ops[0], ast.In | ast.NotIn)
                and isinstance(node.comparators[0], ast.Name) and node.comparators[0].id == "declaration"):
            keys.add(node.left.value)
    return keys


def test_no_section_is_read_outside_the_registry() -> None:
    read: dict[str, set[str]] = {}
    for name, path in modules().items():
        for key in _top_level_keys(ast.parse(path.read_text())):
            read.setdefault(key, set()).add(name)
    unknown = {k: v for k, v in read.items() if k not in features.BY_SECTION}
    assert unknown == {}
    assert {"persist", "tmpfiles", "etc", "users", "activation"} <= set(read)  # the scan sees them


def test_the_scan_finds_a_section_read_behind_the_registrys_back() -> None:
    tree = ast.parse('def steps(declaration):\n    if "wipe" in declaration:\n'
                     '        return parse(declaration.get_table("wipe2"))\n')
    assert _top_level_keys(tree) == {"wipe", "wipe2"}


# --- steps ------------------------------------------------------------------------------------


def test_build_plan_makes_only_declared_steps_with_the_rows_order() -> None:
    table = declaration(FULL)
    steps = compose.build_plan(table)
    snippets = set(table.get_table("activation"))
    spec_of = {s.name: (f, s) for f in features.FEATURES for s in f.steps}
    assert {s.name for s in steps} == set(features.BUILTINS) | snippets  # FULL has every section
    for index, step in enumerate(steps):
        if step.name in snippets:
            continue
        _, spec = spec_of[step.name]
        earlier = [s.name for s in steps[:index]]
        want = earlier if features.EVERYTHING in spec.after else [n for n in earlier if n in spec.after]
        assert list(step.deps) == want, step.name
        assert step.description == spec.summary, step.name
    rows = [spec_of[s.name][0].name for s in steps if s.name not in snippets]
    assert rows == sorted(rows, key=[f.name for f in features.FEATURES].index), "steps out of registry order"


def test_a_step_the_row_does_not_declare_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    row = features.BY_NAME["etc"]
    bad = features.Feature(row.name, row.package, row.summary, sections=row.sections, check=row.check,
                           steps=(), step_factory=row.step_factory)
    monkeypatch.setattr(features, "FEATURES", tuple(bad if f is row else f for f in features.FEATURES))
    with pytest.raises(AssertionError, match="does not declare"):
        compose.build_plan(declaration(""))


def test_no_step_is_named_outside_the_registry() -> None:
    """Every Step(...) built with a literal name (or a module constant) in src names a builtin."""
    names: dict[str, str] = {}
    for module, path in modules().items():
        tree = ast.parse(path.read_text())
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)
                     and isinstance(n.value.value, str)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Step" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names[first.value] = module
                elif isinstance(first, ast.Name) and first.id in constants:
                    names[constants[first.id]] = module
    assert set(names) - set(features.BUILTINS) == set()
    assert set(features.BUILTINS) <= set(names)  # the scan sees every builtin's constructor


def test_snippets_cannot_take_a_builtin_name() -> None:
    for name in features.BUILTINS:
        with pytest.raises(ConfigError):
            compose.build_plan(declaration(f'[activation."{name}"]\ntext = "true"\n'))


# --- docs -------------------------------------------------------------------------------------

ARCHITECTURE = Path(__file__).parents[1] / "docs" / "ARCHITECTURE.md"


def features_table() -> str:
    """docs/ARCHITECTURE.md's table of features, as the registry makes it."""
    rows = ["| feature | package | sections | builtin steps (runs after) | commands |", "|---|---|---|---|---|"]
    for feature in features.FEATURES:
        names = cli._Names()
        if feature.commands_module is not None:
            __import__(feature.commands_module, fromlist=["register"]).register(names)
        sections = ", ".join(f"`[{s.name}]`" for s in feature.sections) or "-"
        steps = [f"`{s.name}`" + (" ({})".format(", ".join("everything before" if a == features.EVERYTHING else a
                                                           for a in s.after)) if s.after else "")
                 for s in feature.steps]
        if feature.declared_steps:
            steps.append("one per `[activation.NAME]` (its `deps`)")
        commands = ", ".join(f"`{name}`" for name, _ in names.commands) or "-"
        rows.append(f"| `{feature.name}` | `{feature.package}` | {sections} | {', '.join(steps) or '-'} | {commands} |")
    return "\n".join(rows) + "\n"


def test_architecture_doc_shows_the_registry() -> None:
    text = ARCHITECTURE.read_text()
    start = text.index("\n", text.index("<!-- features table:")) + 1
    shown = text[start:text.index("<!-- end of features table -->")]
    assert shown == features_table(), "docs/ARCHITECTURE.md's features table should read:\n" + features_table()
