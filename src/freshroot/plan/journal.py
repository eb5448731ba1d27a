"""The journal: what an apply did, step by step, in /run/freshroot/ below the root.

Two files. ``journal.json`` is the whole document, rewritten atomically (temporary file +
rename) when a run starts and when it ends. ``journal.log`` holds what happened in between:
one JSON line appended (O_APPEND, one write) when a step starts, after each action that
records something, and when a step ends. A reader (``status``, ``undo``, the next apply)
takes the document and replays the log over it, ignoring a torn last line, so it sees a
consistent state whatever moment the writer was killed at. Appending instead of rewriting
keeps the journal's cost per step constant and small: a rename over an existing file costs
milliseconds on ext4 (it forces the new data out), and snippets are many.

Resuming: an apply that finds the journal of an unfinished run of the *same plan* (same plan
id, computed by the caller from the declaration) on the *same boot* continues that run: it
keeps the run id and skips the steps the journal marks done, so a snippet that completed
before a ``kill -9`` does not run twice; the step that was running is run again (steps are
idempotent). A finished run, another plan, or another boot starts a new run.

Records: what actions returned from ``Action.record()``, per step, accumulated over the runs
of this boot (a second apply that changes nothing must not make ``undo`` forget what the
first one made). ``undo`` consumers take them with :func:`read` and drop them with
:meth:`Journal.forget`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import chase
from freshroot.fs.ops import mkdir_parents, read_fd, reopen

if TYPE_CHECKING:
    from freshroot.plan.result import StepResult

DIRECTORY = "/run/freshroot"
NAME = "journal.json"
LOG = "journal.log"
PATH = f"{DIRECTORY}/{NAME}"
VERSION = 1


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _read_file(root_fd: int, path: str) -> bytes | None:
    try:
        with chase(path, root_fd=root_fd) as found:
            fd = reopen(found.fd, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return read_fd(fd)
    finally:
        os.close(fd)


def _replay(data: dict[str, Any], log: bytes) -> None:
    """Apply the log's events to the document (a torn last line is ignored)."""
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if (event.get("run_id"), event.get("gen")) != (data.get("run_id"), data.get("gen")):
            continue  # an older run's, or already in the document
        name = event.get("step")
        kind = event.get("event")
        if kind == "finish":
            data["state"] = event["state"]
            data["finished"] = event.get("time")
            continue
        if not isinstance(name, str):
            continue
        if kind == "child":
            data["steps"].setdefault(name, {"state": "running"})["child"] = [event.get("child"),
                                                                            event.get("child_start")]
        elif kind == "start":
            data["steps"][name] = {"state": "running", "started": event.get("time"), "pid": event.get("pid")}
            data.setdefault("_base", {})[name] = len(data["records"].get(name, ()))
        elif kind in ("progress", "done"):
            entry = data["steps"].setdefault(name, {"state": "running"})
            entry["actions"] = event.get("actions", [])
            base = data.get("_base", {}).get(name, len(data["records"].get(name, ())))
            merged = data["records"].get(name, [])[:base] + event.get("records", [])
            if merged:
                data["records"][name] = merged
            if kind == "done":
                entry.update({k: v for k, v in event.items() if k in ("state", "status", "error", "reason")})
                entry["finished"] = event.get("time")
                entry.pop("pid", None)
                entry.pop("child", None)


def read(root_fd: int) -> dict[str, Any] | None:
    """The journal of the root (document + log), or None when there is none (or it is not ours)."""
    raw = _read_file(root_fd, PATH)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None  # written by something else: treated as absent, replaced on the next apply
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return None
    _replay(data, _read_file(root_fd, f"{DIRECTORY}/{LOG}") or b"")
    data.pop("_base", None)
    return data


def _start_time(pid: int) -> int | None:
    """A process's start time (clock ticks after boot): with the pid, it names one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _stop_leftovers(data: Mapping[str, Any]) -> None:
    """Kill the process groups that the steps of a killed run were running (a half-run snippet
    must not race its own rerun), if they are still the same processes."""
    for entry in data.get("steps", {}).values():
        child = entry.get("child") if isinstance(entry, dict) and entry.get("state") == "running" else None
        if not isinstance(child, list) or len(child) != 2 or not isinstance(child[0], int):
            continue
        pid, started = child
        if started is None or _start_time(pid) != started:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2
        while _start_time(pid) == started and time.monotonic() < deadline:
            time.sleep(0.005)


def last_run(root_fd: int) -> dict[str, Any] | None:
    """What ``status`` says of the last apply on this boot: its run id, state (running,
    finished, failed; "killed" for a running one whose process is gone), when, and the steps
    by state. None when no apply has run since boot."""
    data = read(root_fd)
    if data is None:
        return None
    state = str(data.get("state", "unknown"))
    pid = data.get("pid")
    if state == "running" and isinstance(pid, int) and not os.path.exists(f"/proc/{pid}"):
        state = "killed"  # the next apply of the same declaration resumes it
    steps: dict[str, list[str]] = {}
    for name, entry in sorted(data.get("steps", {}).items()):
        if isinstance(entry, dict):
            steps.setdefault(str(entry.get("state", "unknown")), []).append(name)
    return {"run_id": data.get("run_id"), "state": state, "same_boot": data.get("boot_id") == boot_id(),
            "started": data.get("started"), "finished": data.get("finished"), "steps": steps,
            "errors": {name: entry["error"] for name, entry in sorted(data.get("steps", {}).items())
                       if isinstance(entry, dict) and entry.get("error")}}


def render_last_run(run: Mapping[str, Any] | None) -> str:
    if run is None:
        return "last apply: none since boot"
    when = run.get("finished") or run.get("started")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) if isinstance(when, (int, float)) else "?"
    boot = "" if run.get("same_boot") else ", on an earlier boot"
    lines = [f"last apply: {run['state']} at {stamp}{boot} (run {str(run.get('run_id'))[:12]})"]
    for state, names in run["steps"].items():
        lines.append(f"  {state}: {', '.join(names)}")
    lines.extend(f"  {name}: {error}" for name, error in run["errors"].items())
    if run["state"] == "killed":
        lines.append("  the next apply of the same declaration resumes it")
    return "\n".join(lines)


@dataclass
class Journal:
    """The journal of one run. Create with :meth:`open` (under the apply lock)."""

    root_fd: int
    plan: str
    run_id: str
    data: dict[str, Any]
    resuming: bool = False
    _dir_fd: int = field(default=-1, repr=False)
    _log_fd: int = field(default=-1, repr=False)

    @classmethod
    def open(cls, root_fd: int, plan: str) -> Journal:
        old = read(root_fd)
        boot = boot_id()
        same_boot = old is not None and old.get("boot_id") == boot
        resuming = bool(
            old is not None and same_boot and old.get("plan") == plan and old.get("state") == "running"
        )
        records: dict[str, Any] = dict(old.get("records", {})) if old is not None and same_boot else {}
        if resuming:
            assert old is not None
            data = old
            _stop_leftovers(data)
            data["pid"] = os.getpid()
            data["resumed"] = int(data.get("resumed", 0)) + 1
        else:
            data = {
                "version": VERSION,
                "run_id": uuid.uuid4().hex,
                "plan": plan,
                "boot_id": boot,
                "pid": os.getpid(),
                "started": time.time(),
                "state": "running",
                "steps": {},
                "records": records,
            }
        with mkdir_parents(root_fd, DIRECTORY, 0o755) as found:
            dir_fd = found.detach()
        journal = cls(root_fd, plan, str(data["run_id"]), data, resuming, dir_fd)
        journal._compact()
        return journal

    def close(self) -> None:
        for name in ("_log_fd", "_dir_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _compact(self) -> None:
        """Write the whole document under a new generation, and start an empty log for it."""
        self.data["gen"] = uuid.uuid4().hex  # events of older logs no longer apply
        self.data["updated"] = time.time()
        text = json.dumps({k: v for k, v in self.data.items() if k != "_base"}, indent=1, sort_keys=True) + "\n"
        # /run is volatile: atomicity matters (a reader or a resumed run after kill -9), fsync does not.
        replace_at(self._dir_fd, NAME, text.encode(), mode=0o644, durable=False)
        if self._log_fd >= 0:
            os.close(self._log_fd)
        self._log_fd = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC
                               | os.O_NOFOLLOW, 0o644, dir_fd=self._dir_fd)

    def _event(self, event: dict[str, Any]) -> None:
        event.update(run_id=self.run_id, gen=self.data["gen"], time=time.time())
        line = json.dumps(event, separators=(",", ":")) + "\n"
        _replay(self.data, line.encode())
        os.write(self._log_fd, line.encode())  # one write with O_APPEND: a line is whole or torn

    @property
    def steps(self) -> dict[str, Any]:
        steps: dict[str, Any] = self.data["steps"]
        return steps

    # --- what the executor calls --------------------------------------------------------

    def completed(self, name: str) -> StepResult | None:
        """When resuming: the result of a step an earlier attempt of this run finished."""
        if not self.resuming:
            return None
        entry = self.steps.get(name)
        if not entry or entry.get("state") != "done":
            return None
        from freshroot.plan.result import Status, StepResult

        return StepResult(
            name, Status(entry["status"]), actions=tuple(entry.get("actions", ())),
            reason="done by an earlier, interrupted attempt of this run", resumed=True,
        )

    def step_started(self, name: str) -> None:
        self._event({"event": "start", "step": name, "pid": os.getpid()})

    def child(self, name: str, pid: int) -> None:
        """``name`` started process group ``pid``: if this run is killed, the next one stops it."""
        self._event({"event": "child", "step": name, "child": pid, "child_start": _start_time(pid)})

    def step_progress(self, name: str, actions: Sequence[str], records: Sequence[Mapping[str, Any]]) -> None:
        """After an action that recorded something: keep it, even if the step never ends."""
        self._event({"event": "progress", "step": name, "actions": list(actions),
                     "records": [dict(r) for r in records]})

    def step_done(self, result: StepResult, records: Sequence[Mapping[str, Any]]) -> None:
        from freshroot.plan.result import Status

        state = {Status.FAILED: "failed", Status.SKIPPED: "skipped"}.get(result.status, "done")
        event: dict[str, Any] = {"event": "done", "step": result.name, "state": state,
                                 "status": str(result.status), "actions": list(result.actions),
                                 "records": [dict(r) for r in records]}
        if result.name not in self.steps:
            self._event({"event": "start", "step": result.name})  # a skipped step never started
        for key in ("error", "reason"):
            value = getattr(result, key)
            if value:
                event[key] = value
        self._event(event)

    def finish(self, ok: bool) -> None:
        self.data["state"] = "finished" if ok else "failed"
        self.data["finished"] = time.time()
        self._compact()

    # --- for undo -------------------------------------------------------------------------

    def forget(self, step: str) -> None:
        """Drop the records of ``step`` (after undo reverted them)."""
        self.data["records"].pop(step, None)
        self._compact()
