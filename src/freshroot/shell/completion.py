"""Completion scripts for bash, zsh and fish, written from the parsers ``--help`` comes from.

The parsers become one tree of commands (:func:`tree`): each with its options (and what an
option's argument is: a directory, a file, one of a few words, an image name or free text),
its positional argument, and its subcommands. Each shell gets the same tables (keyed by the
command path, "freshroot image build") and one small function that walks the words typed so
far through them, so the three scripts complete the same things: subcommands, options,
directories for ``--root`` and the like, files, ``--format``'s choices, and the declared
image names (``freshroot completion --images``, reading the same --root/--config typed on
the line) after ``image build``.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

PROGS = ("freshroot", "freshroot-tmpfiles")
# Arguments that name something on disk, by their metavar; everything else is free text.
FILE_METAVARS = ("PATH", "IMAGE", "CONFIGURATION FILE")
DIR_METAVARS = ("DIR",)
# Positional arguments that are a declared [portable.NAME].
IMAGE_NAME_COMMANDS = (("freshroot", "image", "build"),)
# The options whose values `completion --images` needs to read the same declaration.
CONTEXT_OPTIONS = ("--root", "--config")


@dataclass(frozen=True)
class Option:
    """One option, for completion."""
    names: tuple[str, ...]
    kind: str | None  # None: takes no argument; else as Command.positional
    help: str


@dataclass(frozen=True)
class Command:
    """One command with its options and subcommands, for completion."""
    words: tuple[str, ...]  # ("freshroot", "image", "build")
    help: str
    options: tuple[Option, ...]
    positional: str | None  # "dir", "file", "images", "choice:a b", "none"; None: takes none
    subcommands: tuple[Command, ...]

    @property
    def path(self) -> str:
        return " ".join(self.words)

    def walk(self) -> Iterator[Command]:
        yield self
        for sub in self.subcommands:
            yield from sub.walk()


def _kind(action: argparse.Action, words: tuple[str, ...]) -> str:
    if action.choices:
        return "choice:" + " ".join(str(c) for c in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if words in IMAGE_NAME_COMMANDS and not action.option_strings:
        return "images"
    if metavar in DIR_METAVARS:
        return "dir"
    return "file" if metavar in FILE_METAVARS else "none"


def _command(parser: argparse.ArgumentParser, words: tuple[str, ...], help_text: str,
             subcommands: tuple[Command, ...] = ()) -> Command:
    options: list[Option] = []
    positional: str | None = None
    subs = list(subcommands)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs += [_command(action.choices[c.dest], (*words, c.dest), c.help or "") for c in action._choices_actions]
        elif action.help == argparse.SUPPRESS:
            continue
        elif action.option_strings:
            kind = None if action.nargs == 0 else _kind(action, words)
            options.append(Option(tuple(action.option_strings), kind, action.help or ""))
        elif positional is None:
            positional = _kind(action, words)
    return Command(words, help_text, tuple(options), positional, tuple(subs))


def tree() -> tuple[Command, ...]:
    """freshroot's commands (each with all its arguments) and freshroot-tmpfiles."""
    from freshroot import cli, manpages
    from freshroot.tmpfiles import commands as tmpfiles

    top = cli.build_parser([])
    commands = tuple(_command(p, ("freshroot", name), summary) for name, summary, p in manpages.full_command_parsers())
    top_options = _command(top, ("freshroot",), top.description or "")
    freshroot = Command(("freshroot",), top.description or "", top_options.options, None, commands)
    tmpfiles_parser = tmpfiles.build_parser()
    return freshroot, _command(tmpfiles_parser, ("freshroot-tmpfiles",), tmpfiles_parser.description or "")


@dataclass(frozen=True)
class Tables:
    """What each script holds: command path -> subcommand names / option names / positional
    kind, and "path|option" -> the kind of the option's argument."""

    subs: dict[str, str]
    opts: dict[str, str]
    args: dict[str, str]
    pos: dict[str, str]


def tables(commands: tuple[Command, ...]) -> Tables:
    subs: dict[str, str] = {}
    opts: dict[str, str] = {}
    args: dict[str, str] = {}
    pos: dict[str, str] = {}
    for top in commands:
        for c in top.walk():
            if c.subcommands:
                subs[c.path] = " ".join(s.words[-1] for s in c.subcommands)
            opts[c.path] = " ".join(n for o in c.options for n in o.names)
            for o in c.options:
                if o.kind is not None:
                    args.update({f"{c.path}|{n}": o.kind for n in o.names})
            if c.positional is not None:
                pos[c.path] = c.positional
    return Tables(subs, opts, args, pos)


def _assoc(name: str, table: dict[str, str], indent: str) -> str:
    rows = "".join(f"\n{indent}    [{shlex.quote(k)}]={shlex.quote(v)}" for k, v in table.items())
    return f"{indent}local -A {name}=({rows}\n{indent})"


_BASH_BODY = r"""
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmdpath=${COMP_WORDS[0]##*/} word option kind i skip=0
    local -a context=()
    # Walk the words before the cursor: subcommands deepen the path, an option that takes an
    # argument skips it (bash splits --root=DIR into --root, =, DIR).
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == = ]]; then skip=1; continue; fi
        if ((skip)); then
            skip=0
            option=${COMP_WORDS[i-1]}
            [[ $option == = ]] && option=${COMP_WORDS[i-2]}
            [[ $option == --root || $option == --config ]] && context+=("$option" "$word")
            continue
        fi
        if [[ $word == -* ]]; then
            [[ -n ${args["$cmdpath|$word"]+x} ]] && skip=1
        elif [[ " ${subs[$cmdpath]-} " == *" $word "* ]]; then
            cmdpath+=" $word"
        fi
    done
    if [[ $cur == = ]]; then
        cur=""
    elif [[ $prev == = ]]; then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    COMPREPLY=()
    if [[ COMP_CWORD -gt 1 && -n ${args["$cmdpath|$prev"]+x} ]]; then
        kind=${args["$cmdpath|$prev"]}
    elif [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${opts[$cmdpath]-}" -- "$cur")
        return 0
    elif [[ -n ${subs[$cmdpath]+x} ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${subs[$cmdpath]}" -- "$cur")
        return 0
    else
        kind=${pos[$cmdpath]-none}
    fi
    case $kind in
        dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
        file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        images) mapfile -t COMPREPLY < <(compgen -W \
            "$("${COMP_WORDS[0]}" completion --images "${context[@]}" 2>/dev/null)" -- "$cur") ;;
        choice:*) mapfile -t COMPREPLY < <(compgen -W "${kind#choice:}" -- "$cur") ;;
    esac
    return 0
}
"""


def bash(commands: tuple[Command, ...]) -> str:
    t = tables(commands)
    progs = " ".join(c.words[0] for c in commands)
    return ("# bash completion for freshroot and freshroot-tmpfiles.\n"
            "# Written by `freshroot completion bash` from the programs' own parsers.\n"
            "_freshroot() {\n"
            + "\n".join(_assoc(n, getattr(t, n), "    ") for n in ("subs", "opts", "args", "pos"))
            + _BASH_BODY + f"complete -F _freshroot {progs}\n")


_ZSH_BODY = r"""
  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}
  local cmdpath=${words[1]:t} word kind key i skip=0
  local -a context
  # As the bash script: subcommands deepen the path, an option's argument is skipped.
  for (( i = 2; i < CURRENT; i++ )); do
    word=${words[i]}
    if (( skip )); then
      skip=0
      [[ ${words[i-1]} == --root || ${words[i-1]} == --config ]] && context+=(${words[i-1]} $word)
      continue
    fi
    if [[ $word == -* ]]; then
      key="$cmdpath|$word"
      (( ${+args[$key]} )) && skip=1
    elif [[ " ${subs[$cmdpath]} " == *" $word "* ]]; then
      cmdpath+=" $word"
    fi
  done
  key="$cmdpath|$prev"
  if [[ $cur == --*=* ]]; then
    key="$cmdpath|${cur%%=*}"
    compset -P '*='
    kind=${args[$key]:-none}
  elif (( CURRENT > 2 && ${+args[$key]} )); then
    kind=${args[$key]}
  elif [[ $cur == -* ]]; then
    compadd -- ${=opts[$cmdpath]}
    return
  elif (( ${+subs[$cmdpath]} )); then
    compadd -- ${=subs[$cmdpath]}
    return
  else
    kind=${pos[$cmdpath]:-none}
  fi
  case $kind in
    dir) _files -/ ;;
    file) _files ;;
    images) compadd -- ${(f)"$(${words[1]} completion --images $context 2>/dev/null)"} ;;
    choice:*) compadd -- ${=kind#choice:} ;;
  esac
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  _freshroot "$@"
else
  compdef _freshroot freshroot freshroot-tmpfiles
fi
"""


def _zsh_assoc(name: str, table: dict[str, str]) -> str:
    rows = "".join(f"\n    {shlex.quote(k)} {shlex.quote(v)}" for k, v in table.items())
    return f"  local -A {name}\n  {name}=({rows}\n  )"


def zsh(commands: tuple[Command, ...]) -> str:
    t = tables(commands)
    return ("#compdef freshroot freshroot-tmpfiles\n"
            "# zsh completion, written by `freshroot completion zsh` from the programs' own parsers.\n"
            "_freshroot() {\n"
            + "\n".join(_zsh_assoc(n, getattr(t, n)) for n in ("subs", "opts", "args", "pos"))
            + _ZSH_BODY)


_FISH_PATH = r"""
# The command path of the words before the cursor ("freshroot image build"): subcommands
# deepen it, an option's argument is skipped.
function __freshroot_path
    set -l tokens (commandline -opc)
    set -l cmdpath (string replace -r '.*/' '' -- $tokens[1])
    set -l skip 0
    for word in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '-*'
                contains -- "$cmdpath|$word" $__freshroot_args; and set skip 1
            case '*'
                contains -- "$cmdpath $word" $__freshroot_commands; and set cmdpath "$cmdpath $word"
        end
    end
    echo $cmdpath
end

# The declared image names, read with the --root and --config typed on the line.
function __freshroot_images
    set -l tokens (commandline -opc)
    set -l context
    set -l option ""
    for word in $tokens[2..-1]
        if test -n "$option"
            set -a context $option $word
            set option ""
            continue
        end
        switch $word
            case --root --config
                set option $word
            case '--root=*' '--config=*'
                set -a context $word
        end
    end
    $tokens[1] completion --images $context 2>/dev/null
end
"""


def _fish_kind(kind: str) -> str:
    if kind == "dir":
        return "-f -a '(__fish_complete_directories (commandline -ct))'"
    if kind == "file":
        return "-F"
    if kind == "images":
        return "-f -a '(__freshroot_images)'"
    if kind.startswith("choice:"):
        return "-f -a " + shlex.quote(kind.removeprefix("choice:"))
    return "-f"


def fish(commands: tuple[Command, ...]) -> str:
    t = tables(commands)
    all_commands = [c.path for top in commands for c in top.walk()]
    lines = ["# fish completion, written by `freshroot completion fish` from the programs' own parsers.",
             "set -g __freshroot_args " + " ".join(shlex.quote(k) for k in t.args),
             "set -g __freshroot_commands " + " ".join(shlex.quote(c) for c in all_commands),
             _FISH_PATH]
    for top in commands:
        prog = top.words[0]
        lines.append(f"complete -c {prog} -f")
        for c in top.walk():
            when = f"-n {shlex.quote(f'test (__freshroot_path) = {shlex.quote(c.path)}')}"
            lines += [f"complete -c {prog} {when} -a {shlex.quote(s.words[-1])} -d {shlex.quote(s.help)}"
                      for s in c.subcommands]
            for o in c.options:
                names = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in o.names)
                takes = "" if o.kind is None else " -r " + _fish_kind(o.kind)
                lines.append(f"complete -c {prog} {when} {names}{takes} -d {shlex.quote(o.help)}")
            if c.positional is not None and not c.subcommands:
                lines.append(f"complete -c {prog} {when} {_fish_kind(c.positional)}")
    return "\n".join(lines) + "\n"


def script(shell: str) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](tree())
