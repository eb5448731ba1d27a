"""The ``[tmpfiles]`` section of the declaration, in NixOS' two shapes.

    [tmpfiles]
    rules = ["d /var/lib/app 0750 app app -"]        # systemd.tmpfiles.rules

    [tmpfiles.settings.10-app."/var/lib/app".d]      # systemd.tmpfiles.settings
    mode = "0750"
    user = "app"
    group = "app"
    age = "10d"

Each settings entry is checked by rendering it and parsing the line the way systemd will, so a
bad mode or age is reported at the TOML line that wrote it, not later from a .conf file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from freshroot.config import fields
from freshroot.config.table import Table
from freshroot.errors import ConfigError, Location
from freshroot.tmpfiles.messages import Level, LineError, Message, SkipLine
from freshroot.tmpfiles.parse import LineParser, ParseOptions
from freshroot.tmpfiles.render import RenderError, Rule, render_rule, render_rules

RULES_FILE = "00-freshroot.conf"
ENTRY_KEYS = frozenset({"type", "mode", "user", "group", "age", "argument"})


@dataclass(frozen=True, slots=True)
class Rendered:
    """One tmpfiles.d file to write: its name and text, and where each line came from."""

    name: str
    text: str
    origins: tuple[Location, ...]


@dataclass(frozen=True, slots=True)
class TmpfilesSection:
    """The [tmpfiles] section: its rules, and its settings for the root's tmpfiles.d."""
    rules: tuple[tuple[str, Location], ...] = ()
    settings: tuple[tuple[str, tuple[tuple[Rule, Location], ...]], ...] = ()

    def render(self) -> list[Rendered]:
        out = []
        if self.rules:
            out.append(Rendered(RULES_FILE, render_rules([r for r, _ in self.rules]),
                                tuple(loc for _, loc in self.rules)))
        for name, rules in self.settings:
            lines = []
            for rule, loc in rules:
                try:
                    lines.append(render_rule(rule) + "\n")
                except RenderError as e:
                    raise ConfigError(str(e), location=loc) from e
            out.append(Rendered(f"{name}.conf", "".join(lines), tuple(loc for _, loc in rules)))
        return out


def _scalar(entry: Table, key: str) -> str | None:
    if key not in entry:
        return None
    value = entry.raw(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise entry.error(f"{entry.name(key)} must be a string", key)
    if key == "mode" and isinstance(value, int):
        raise entry.error(f"{entry.name(key)} must be a string such as \"0755\" (TOML has no octal "
                          "integers that read as modes)", key)
    return str(value)


def parse_section(section: Table) -> TmpfilesSection:
    section.reject_unknown(frozenset({"rules", "settings", "engine"}))  # engine: systemd units
    rules = tuple((r, section.location("rules", i)) for i, r in enumerate(section.get_str_list("rules")))
    for i, (line, _) in enumerate(rules):
        if any(c in line for c in "\n\r\0"):
            raise section.error(f"{section.name('rules', i)}: a rule is one line, without a newline or NUL",
                                "rules", i, hint="write one rule per array item")
    settings = []
    for name, paths in section.get_table("settings").tables():
        if "/" in name or name.startswith(".") or not name or fields.text_problem(name) is not None:
            raise paths.error(f"{paths.name()}: a settings name becomes a file name, so it cannot "
                              "contain '/' or control characters or start with '.'")
        entries = []
        for path, types in paths.tables():
            for key, entry in types.tables():
                entry.reject_unknown(ENTRY_KEYS)
                rule = Rule(
                    type=_scalar(entry, "type") or key, path=path, mode=_scalar(entry, "mode"),
                    user=_scalar(entry, "user"), group=_scalar(entry, "group"), age=_scalar(entry, "age"),
                    argument=_scalar(entry, "argument"),
                )
                entries.append((rule, entry.location()))
        settings.append((name, tuple(entries)))
    return TmpfilesSection(rules, tuple(settings))


def check(rendered: list[Rendered], *, root: str = "/") -> list[Message]:
    """Parse the rendered lines as systemd will; each problem named at the TOML line."""
    # graceful: users and groups may well be created later (sysusers, activation), as at boot.
    parser = LineParser(ParseOptions(root=root, boot=True, graceful=True, environ=dict(os.environ)))
    problems = []
    for file in rendered:
        # split("\n"), as systemd reads lines: splitlines() also splits at \x0b, \x1d, U+2028...,
        # which a rendered word may hold, and the lines would no longer match their origins.
        for text, origin in zip(file.text.split("\n")[:-1], file.origins, strict=True):
            if not text.strip() or text.strip().startswith("#"):
                continue
            try:
                parser.parse_line(text.strip(), origin)
            except LineError as e:
                problems.append(Message(Level.ERR, f"{e.text} (in the rendered line: {text})", origin))
            except SkipLine:
                continue
    return problems


def check_declaration(declaration: Table) -> None:
    """For ``freshroot config check``: the [tmpfiles] section renders to lines systemd parses."""
    problems = check(parse_section(declaration.get_table("tmpfiles")).render())
    if problems:
        first = problems[0]
        raise ConfigError(first.text, location=first.location,
                          hint=f"{len(problems)} entries would not parse" if len(problems) > 1 else None)
