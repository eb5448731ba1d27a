"""pyinfra facts of a freshroot host. Arguments are paths, the root and a digest: never the
declaration (pyinfra logs fact arguments)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api.facts import FactBase

from freshroot.output import JSON_VERSION
from freshroot.pyinfra.common import STAGE, command
from freshroot.rootpaths import on_host

FRESHROOT = "freshroot"


def _json(output: list[str]) -> dict[str, Any] | None:
    """A freshroot --json document; None for no output; else ``{"error": TEXT, ...}`` with the
    text a person can act on: what was printed instead of JSON, the message of freshroot's
    JSON error document (with its ``exit_code`` and ``problems``), or why a document of
    another schema version is not read (its keys may mean something else: docs/json.md)."""
    text = "\n".join(output).strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"error": text[-2000:]}
    if not isinstance(data, dict):
        return {"error": text[-2000:]}
    # A document without "version" is read as it is: freshroot before every document had one.
    version = data.get("version", JSON_VERSION)
    if type(version) is not int or version != JSON_VERSION:
        return {"error": f"freshroot on the host printed JSON version {version!r}, and this controller reads "
                         f"version {JSON_VERSION}: run the same freshroot version on both (docs/json.md)"}
    error = data.get("error")
    if isinstance(error, dict):  # the error document: the command failed before it had its own
        problems = error.get("problems")
        return {"error": str(error.get("message") or text[-2000:]), "exit_code": error.get("exit_code"),
                "problems": problems if isinstance(problems, list) else []}
    return data


class FreshrootStaged(FactBase[dict[str, str]]):
    """The declaration files staged on the host: {name: sha256}."""

    def command(self, root: str = "/", stage: str = STAGE) -> str:
        where = shlex.quote(on_host(stage, root))
        return f"cd {where} 2>/dev/null && for f in *.toml; do [ -f \"$f\" ] && sha256sum -- \"$f\"; done; true"

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def process(self, output: list[str]) -> dict[str, str]:
        staged: dict[str, str] = {}
        for line in output:
            sha, _, name = line.partition("  ")
            if len(sha) == 64 and name:
                staged[name] = sha
        return staged


class _FreshrootJson(FactBase[dict[str, Any] | None]):
    """A freshroot command's JSON, or None when freshroot is not there (or has no such
    command); {"error": ...} when it printed something else."""

    def process(self, output: list[str]) -> dict[str, Any] | None:
        return _json(output)


class FreshrootPlan(_FreshrootJson):
    """``freshroot plan --json`` of the staged declaration. ``digest`` names which one (it is
    only in the arguments so that a plan of another declaration is another fact)."""

    def command(self, root: str = "/", stage: str = STAGE, digest: str = "", freshroot: str = FRESHROOT) -> str:
        return command(freshroot, "plan", "--json", "--root", root, "--config", on_host(stage, root)) + \
            " 2>/dev/null; true"


class FreshrootGenerations(_FreshrootJson):
    """``freshroot generations --json``: the current generation, each one's digest and confirm state."""

    def command(self, root: str = "/", stage: str = STAGE, freshroot: str = FRESHROOT) -> str:
        return command(freshroot, "generations", "--json", "--root", root, "--config", on_host(stage, root)) + \
            " 2>/dev/null; true"


class FreshrootStatus(_FreshrootJson):
    """``freshroot status --json`` of the staged declaration."""

    def command(self, root: str = "/", stage: str = STAGE, freshroot: str = FRESHROOT) -> str:
        return command(freshroot, "status", "--json", "--root", root, "--config", on_host(stage, root)) + \
            " 2>/dev/null; true"


class FreshrootFacts(_FreshrootJson):
    """``freshroot facts --json``: disks by stable id, memory, rescue system, tools (None with
    a freshroot that has no ``facts`` command)."""

    def command(self, freshroot: str = FRESHROOT) -> str:
        return command(freshroot, "facts", "--json") + " 2>/dev/null; true"


class FreshrootInstalled(FactBase[dict[str, str]]):
    """What ``install`` left below a root: {path: sha256} of its declaration files and the
    generator (empty when nothing is there)."""

    def command(self, root: str = "/mnt") -> str:
        where = shlex.quote(root)
        return (f"cd {where} 2>/dev/null && for f in etc/freshroot/conf.d/*.toml etc/freshroot/freshroot.toml "
                "usr/lib/systemd/system-generators/freshroot-generator; do [ -f \"$f\" ] && sha256sum -- \"$f\"; "
                "done; true")

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def process(self, output: list[str]) -> dict[str, str]:
        return FreshrootStaged().process(output)


def current_generation(generations: dict[str, Any] | None) -> dict[str, Any] | None:
    """The current generation's entry of a FreshrootGenerations fact."""
    if not generations or "generations" not in generations:
        return None
    return next((g for g in generations["generations"] if g.get("current")), None)


def plan_changes(plan: dict[str, Any] | None) -> bool | None:
    """Whether a FreshrootPlan fact has changes to make (None: no usable plan)."""
    if not plan or "counts" not in plan:
        return None
    return bool(plan["counts"].get("changed")) or not plan.get("ok", False)
