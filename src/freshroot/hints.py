"""The freshroot commands hints tell people to run, spelled so that they can be pasted: with
the ``--root``, ``--config`` and ``--generations`` given to this run, as typed (a relative
path stays relative: it is pasted where it was typed), only those the hinted command takes,
after its words, where the CLI's parser reads them, and quoted for a shell.

Which options a command takes comes from the CLI's own parser, built for that command only
when a hint is made (never on a run that prints none).
"""

from __future__ import annotations

from freshroot.output import invocation

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from collections.abc import Sequence

# The options a hint repeats, as the user typed them: where the root is, which declaration,
# which generations directory.
REPEATED = ("--root", "--config", "--generations")

_known: dict[tuple[str, ...], frozenset[str]] = {}


def options_of(words: Sequence[str]) -> frozenset[str]:
    """The option strings of the command ``words`` start with (``("disk", "plan", ...)``),
    from the CLI's own parser."""
    import argparse

    from freshroot.cli import build_parser

    key = tuple(words)
    if key not in _known:
        parser: argparse.ArgumentParser = build_parser(list(words[:1]))
        for word in words:
            sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            if sub is None or word not in sub.choices:
                break
            parser = sub.choices[word]
        _known[key] = frozenset(s for a in parser._actions for s in a.option_strings)
    return _known[key]


def given_options(argv: Sequence[str]) -> list[str]:
    """--root, --config and --generations of ``argv``, with their values as typed, in order:
    ``--root=x`` and argparse's abbreviations (``--conf x``) are read as the parser read them."""
    words = list(argv[: list(argv).index("--")] if "--" in argv else argv)
    if not any(w.startswith(("--r", "--c", "--g")) for w in words):  # no parser built for nothing
        return []
    accepted = options_of([w for w in words if not w.startswith("-")][:3])
    out: list[str] = []
    i = 0
    while i < len(words):
        word, eq, value = words[i].partition("=")
        # as argparse resolves a long option: exactly, or the one option it is a prefix of
        if word.startswith("--") and word not in accepted:
            matches = [a for a in accepted if a.startswith(word)]
            word = matches[0] if len(matches) == 1 else word
        if word in REPEATED and word in accepted:
            if eq:
                out += [word, value]
            elif i + 1 < len(words):
                out += [word, words[i + 1]]
                i += 1
        i += 1
    return out


def command(*words: str) -> str:
    """``freshroot WORDS...`` with the --root/--config (and --generations) given to this run
    that the command takes: ``command("migrate", "/var/lib/app")`` is ``freshroot migrate
    /var/lib/app --root /mnt`` after ``freshroot status --root /mnt``."""
    import shlex

    given = given_options(invocation())
    if given:
        accepted = options_of(words)
        given = [w for name, value in zip(given[::2], given[1::2], strict=True) if name in accepted
                 for w in (name, value)]
    return " ".join(shlex.quote(w) for w in ("freshroot", *words, *given))
