"""Running the same tmpfiles.d text through systemd-tmpfiles and through freshroot's parser.

What the reference shows of its parse: its messages, its exit status, and (with --dry-run) the
"Would create ..." lines; for d/f/p/L lines applied for real into a scratch root, the nodes
themselves (mode, owner, content, link target).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from freshroot.tmpfiles.load import LoadOptions, load
from freshroot.tmpfiles.messages import Level, Message
from freshroot.tmpfiles.model import Config, Item

ETC_PASSWD = "".join(f"{entry}\n" for entry in (  # a scratch root's accounts
    "root:x:0:0:root:/root:/bin/sh",
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "alice:x:1000:1000:Alice:/home/alice:/bin/sh",
    "bob:x:1001:100:Bob:/home/bob:/bin/sh",
))
GROUP = """root:x:0:
daemon:x:1:
users:x:100:bob
alice:x:1000:
wheel:x:10:alice
"""
OS_RELEASE = 'ID=testos\nVERSION_ID="42.1"\nVARIANT_ID=lab\nBUILD_ID=b123\nIMAGE_ID=img\nIMAGE_VERSION=7\n'
MACHINE_ID = "0123456789abcdef0123456789abcdef\n"


def make_root(path: Path, *, accounts: bool = True, os_release: bool = True) -> Path:
    """A scratch root with passwd/group, machine-id and os-release (each optional)."""
    (path / "etc").mkdir(parents=True, exist_ok=True)
    if accounts:
        (path / "etc/passwd").write_text(ETC_PASSWD)
        (path / "etc/group").write_text(GROUP)
    if os_release:
        (path / "etc/os-release").write_text(OS_RELEASE)
        (path / "etc/machine-id").write_text(MACHINE_ID)
    return path


@dataclass
class Result:
    rc: int
    messages: list[str]
    would: list[str] = field(default_factory=list)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CREDENTIALS_DIRECTORY", "SYSTEMD_LOG_LEVEL", "TMPDIR", "TEMP", "TMP")}
    env["SYSTEMD_LOG_COLOR"] = "0"
    env["SYSTEMD_LOG_LOCATION"] = "0"
    env["SYSTEMD_LOG_TIME"] = "0"
    env.update(extra or {})
    return env


def run_reference(binary: Path, root: Path, args: list[str], *, env: Mapping[str, str] | None = None,
                  stdin: bytes = b"", dry_run: bool = True) -> Result:
    argv = [str(binary), f"--root={root}", *(["--dry-run"] if dry_run else []), *args]
    proc = subprocess.run(argv, input=stdin, capture_output=True, env=clean_env(env), timeout=60, check=False)
    lines = proc.stderr.decode("utf-8", "surrogateescape").splitlines()
    would = [m for m in lines if m.startswith("Would ")]
    messages = [m for m in lines if not m.startswith("Would ")]
    return Result(proc.returncode, messages, would)


def run_ours(root: Path, configs: list[str], *, env: Mapping[str, str] | None = None,
             **options: object) -> tuple[Result, Config]:
    collected: list[Message] = []
    opts = LoadOptions(configs=tuple(configs), root=str(root), environ=clean_env(env), **options)  # type: ignore[arg-type]
    config = load(opts, collected.append)
    rc = 1 if config.read_failed else 65 if config.invalid else 0
    # One message per stderr line, as the reference's are read.
    shown = [line for m in collected if m.level <= Level.INFO for line in str(m).splitlines()]
    return Result(rc, shown), config


# Messages systemd prints while parsing without naming the line.
_UNLOCATED_PARSE = ("Unknown file attribute", "Setting file attribute", "Failed to unescape parameter",
                    "Malformed extended attribute", "Failed to parse extended attribute", "Failed to read '",
                    "Failed to read credential", "All rules containing unresolvable specifiers")


def parse_messages(result: Result, sources: tuple[str, ...]) -> list[str]:
    """The messages of the parse (those naming a source line, and the few that name none), not
    those of the dry-run create phase that follows."""
    return [m for m in result.messages
            if m.startswith(tuple(f"{s}:" for s in sources)) or m.startswith(_UNLOCATED_PARSE)]


def compare_parse(binary: Path, root: Path, conf: Path, *, env: Mapping[str, str] | None = None,
                  extra: tuple[str, ...] = (), **options: object) -> tuple[Result, Result, Config]:
    """Reference and freshroot on one file: (reference, ours, our config). --create --dry-run."""
    ref = run_reference(binary, root, ["--create", *extra, str(conf)], env=env)
    ref.messages = parse_messages(ref, (str(conf),))
    if ref.rc == 73:  # EX_CANTCREAT: the dry-run create phase failed; the parse itself was clean
        ref.rc = 0
    ours, config = run_ours(root, [str(conf)], env=env, **options)
    ours.messages = parse_messages(ours, (str(conf),))  # the same filter, for multi-line messages
    return ref, ours, config


_WOULD = ("Would create file ", "Would truncate ", "Would create directory ", "Would create subvolume ",
          "Would create fifo ", "Would create symlink ", "Would create device node ")
_CREATING = frozenset("fFdDvqQpLcb")


def would_paths(result: Result, root: Path) -> set[str]:
    """The paths (relative to the root) that the reference's dry run would create."""
    out = set()
    prefix = str(root)
    for line in result.would:
        for w in _WOULD:
            if line.startswith(w):
                rest = line[len(w):]
                if w == "Would create symlink ":
                    rest = rest.split(" -> ", 1)[0]
                out.add(rest[len(prefix):] if rest.startswith(prefix) else rest)
    return out


def our_created_paths(config: Config, root: Path | None = None) -> set[str]:
    """The paths our items would create in an empty root. L? lines whose target is missing below
    ``root`` are left out: systemd decides that when it creates, not when it parses."""
    def creates(i: Item) -> bool:
        if i.type.value not in _CREATING:
            return False
        if i.if_exists and root is not None and i.argument is not None:
            return os.path.lexists(os.path.join(root, i.argument.lstrip("/")))
        return True

    return {g.path for g in config.groups if any(creates(i) for i in g.items)}
