"""One report per host, merged: what ``deploy`` prints, and writes with ``--report FILE``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

NO_CHANGE = "no change"
CHANGED = "changed"
FAILED = "failed"
UNREACHABLE = "unreachable"
NOT_RUN = "not run"


@dataclass
class HostReport:
    """What a deploy did on one host."""
    name: str
    address: str
    reachable: bool = False
    ok: bool = False
    status: str = NOT_RUN  # no change, changed, failed, unreachable, not run
    plan: dict[str, Any] | None = None  # freshroot plan --json (plan, and apply --diff)
    apply: dict[str, Any] | None = None  # freshroot apply/rollback --json, when one ran
    generation: int | None = None
    confirmed: str | None = None  # the current generation's confirm state (pending, confirmed...)
    rolled_back: bool = False
    error: str | None = None
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeployReport:
    """What a deploy did on every host (the `deploy --json` document)."""
    action: str
    fleet: str
    hosts: list[HostReport] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped early (over --fail-percent)

    @property
    def failed(self) -> list[str]:
        return [h.name for h in self.hosts if not h.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "fleet": self.fleet, "ok": self.ok, "stopped": self.stopped,
                "hosts": {h.name: h.to_json() for h in self.hosts}, "failed": self.failed,
                "rerun": self.rerun()}

    def rerun(self) -> str | None:
        """The command that runs the failed hosts again, quoted for a shell."""
        if not self.failed:
            return None
        from freshroot.hints import command

        return command("deploy", self.action, "--fleet", self.fleet, *(w for n in self.failed for w in ("--on", n)))

    def render(self, *, colour: bool = False) -> str:
        """The table ``deploy`` prints; ``colour``: each host's status in colour (a terminal)."""
        from freshroot.output import paint, status_word

        width = max([len(h.name) for h in self.hosts] + [4])
        lines = [paint(f"deploy {self.action} ({self.fleet})", "bold", colour)]
        for h in self.hosts:
            extra = []
            if h.generation is not None:
                extra.append(f"generation {h.generation}")
            if h.confirmed:
                extra.append(h.confirmed)
            if h.rolled_back:
                extra.append("rolled back")
            if h.plan and self.action == "plan":
                counts = h.plan.get("counts") or {}
                extra.append(f"{counts.get('changed', 0)} step(s) to change")
            detail = f" ({', '.join(extra)})" if extra else ""
            lines.append(f"  {h.name:<{width}}  {status_word(h.status, colour)}{detail}  {h.duration:.1f}s")
            if h.error:
                lines.extend(f"  {'':<{width}}    {line}" for line in h.error.splitlines()[-5:])
        if self.stopped:
            lines.append(f"{paint('stopped:', 'red+bold', colour)} {self.stopped}")
        if self.failed:
            lines.append(f"{paint('failed:', 'red+bold', colour)} {', '.join(self.failed)}; run them again with "
                         f"`{self.rerun()}`")
        return "\n".join(lines)
