"""The state store: what applies did, step by step, and every change freshroot made, in
/run/freshroot/ below the root. ``status``, resume and ``undo`` read it; nothing else records
state (the boot services and the persist commands write their changes here too).

Two files. ``journal.json`` is the whole document, rewritten atomically (temporary file +
rename) when a run starts and when it ends. ``journal.log`` holds what happened in between:
one JSON line appended (O_APPEND, one write) when a step starts, for each change *before* it
is made, and when a step ends. A reader takes the document and replays the log over it,
ignoring a torn last line, so it sees a consistent state whatever moment the writer was killed
at. Appending instead of rewriting keeps the cost per step constant and small: a rename over
an existing file costs milliseconds on ext4 (it forces the new data out), and snippets are many.

Changes: typed records (:mod:`freshroot.plan.records`: a type tag, a version, the fields),
each written before its change is made, so a crash leaves a record of whatever it was doing
(undo tolerates records of changes that never happened). They accumulate over runs and boots
until ``undo`` reverts them (an offline root keeps its /etc files and users across the host's
reboots; a live root's /run starts empty at every boot, with nothing mounted or made yet).

Resuming: an apply that finds the journal of an unfinished run of the *same plan* (same plan
id, computed by the caller from the declaration) on the *same boot* continues that run: it
keeps the run id and skips the steps the journal marks done, so a snippet that completed
before a ``kill -9`` does not run twice; the step that was running is run again (steps are
idempotent). A finished run, another plan, or another boot starts a new run.

Trust: the files are written and read only under the apply lock, opened without following
symlinks and checked on the fd (:mod:`freshroot.plan.statedir`); a store that fails the checks
(owned by a user, hard-linked, ...) is refused with a message, never read or truncated.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from freshroot.fs.atomic import replace_at
from freshroot.fs.ops import read_fd
from freshroot.plan import statedir
from freshroot.plan.lock import NAME as LOCK_NAME
from freshroot.plan.lock import start_time
from freshroot.plan.records import NotReverted, Record, from_json

if TYPE_CHECKING:
    from freshroot.plan.result import StepResult

DIRECTORY = statedir.DIRECTORY
NAME = "journal.json"
LOG = "journal.log"
PATH = f"{DIRECTORY}/{NAME}"
VERSION = 2
READ_LIMIT = 1 << 30


class Recorder(Protocol):
    """Where an action's change records go before the change is made."""

    def change(self, step: str, record: Record) -> None: ...


class NoRecords:
    """A Recorder that keeps nothing (``install`` prepares a disk that has not booted: there is
    nothing to undo there, and no /run/freshroot belongs in its image)."""

    def change(self, step: str, record: Record) -> None:
        pass


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _read_file(dir_fd: int, name: str) -> bytes | None:
    fd = statedir.open_file(dir_fd, name, os.O_RDONLY)
    if fd is None:
        return None
    try:
        return read_fd(fd, READ_LIMIT)
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
        if kind == "change":
            data["changes"].append({"step": name, "record": event.get("record")})
        elif kind == "child":
            data["steps"].setdefault(name, {"state": "running"})["child"] = [event.get("child"),
                                                                            event.get("child_start")]
        elif kind == "start":
            data["steps"][name] = {"state": "running", "started": event.get("time"), "pid": event.get("pid")}
        elif kind == "done":
            entry = data["steps"].setdefault(name, {"state": "running"})
            entry["actions"] = event.get("actions", [])
            entry.update({k: v for k, v in event.items() if k in ("state", "status", "error", "reason")})
            entry["finished"] = event.get("time")
            entry.pop("pid", None)
            entry.pop("child", None)


def _load(dir_fd: int) -> dict[str, Any] | None:
    raw = _read_file(dir_fd, NAME)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None  # torn or foreign (but ours by owner): treated as absent, replaced on the next write
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("changes"), list):
        return None
    _replay(data, _read_file(dir_fd, LOG) or b"")
    return data


def read(root_fd: int) -> dict[str, Any] | None:
    """The store of the root (document + log), or None when there is none. Raises
    StateRefusedError when it is there but not trustworthy."""
    opened = statedir.open_dir(root_fd, create=False)
    if opened is None:
        return None
    dir_fd, _ = opened
    try:
        return _load(dir_fd)
    finally:
        os.close(dir_fd)


def _stop_leftovers(data: Mapping[str, Any]) -> None:
    """Kill the process groups that the steps of a killed run were running (a half-run snippet
    must not race its own rerun), if they are still the same processes."""
    for entry in data.get("steps", {}).values():
        child = entry.get("child") if isinstance(entry, dict) and entry.get("state") == "running" else None
        if not isinstance(child, list) or len(child) != 2 or not isinstance(child[0], int):
            continue
        pid, started = child
        if started is None or start_time(pid) != started:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2
        while start_time(pid) == started and time.monotonic() < deadline:
            time.sleep(0.005)


def last_run(root_fd: int) -> dict[str, Any] | None:
    """What ``status`` says of the last apply: its run id, state (running, finished, failed;
    "killed" for a running one whose process is gone), when, the steps by state, and how many
    changes ``undo`` would revert. None when no apply has run."""
    data = read(root_fd)
    if data is None or data.get("run_id") is None:
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
                       if isinstance(entry, dict) and entry.get("error")},
            "changes": len(data.get("changes", ()))}


def render_last_run(run: Mapping[str, Any] | None, *, colour: bool = False) -> str:
    """The last apply, for ``status``; ``colour``: its states in colour (a terminal)."""
    from freshroot.output import paint, status_word

    if run is None:
        return "last apply: none recorded"
    when = run.get("finished") or run.get("started")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) if isinstance(when, (int, float)) else "?"
    boot = "" if run.get("same_boot") else ", on an earlier boot"
    shown = status_word(str(run["state"]), colour)
    lines = [f"last apply: {shown} at {stamp}{boot} (run {str(run.get('run_id'))[:12]})"]
    for state, names in run["steps"].items():
        lines.append(f"  {status_word(state, colour)}: {', '.join(names)}")
    lines.extend(f"  {name}: {paint(error, 'red', colour)}" for name, error in run["errors"].items())
    if run["state"] == "killed":
        lines.append("  the next apply of the same declaration resumes it")
    if run.get("changes"):
        from freshroot.hints import command

        lines.append(f"  {run['changes']} recorded change(s): `{command('undo')}` reverts them")
    return "\n".join(lines)


@dataclass
class Journal:
    """The store, open for writing. Create with :meth:`open` (under the apply lock): with a
    plan, for a run of it; with ``plan=None``, to record changes or to undo them without
    starting a run (the persist commands, the boot services, ``undo``)."""

    root_fd: int
    plan: str | None
    run_id: str | None
    data: dict[str, Any]
    resuming: bool = False
    _dir_fd: int = field(default=-1, repr=False)
    _log_fd: int = field(default=-1, repr=False)
    _said: set[str] | None = field(default=None, repr=False)  # the NotReverted changes kept

    @classmethod
    def open(cls, root_fd: int, plan: str | None, *, made: Sequence[str] = ()) -> Journal:
        """``made``: the directories of /run/freshroot's path the caller (the lock) created; the
        store removes them when ``undo`` has reverted everything."""
        dir_fd, own = statedir.open_dir(root_fd) or (-1, [])
        try:
            old = _load(dir_fd)
        except BaseException:
            os.close(dir_fd)
            raise
        boot = boot_id()
        journal = cls(root_fd, plan, None, {}, _dir_fd=dir_fd)
        blank: dict[str, Any] = {"version": VERSION, "run_id": None, "state": "none", "steps": {}, "changes": [],
                                 "made": []}
        data = old if old is not None else blank
        data["made"] = [*data.get("made", []), *(p for p in [*made, *own] if p not in data.get("made", []))]
        if plan is None:
            journal.data, journal.run_id = data, data.get("run_id")
            if old is None or made or own:
                journal._compact(keep_gen=False)
            else:
                journal._open_log(truncate=False)
            return journal
        same_boot = old is not None and old.get("boot_id") == boot
        resuming = bool(old is not None and same_boot and old.get("plan") == plan and old.get("state") == "running")
        if resuming:
            _stop_leftovers(data)
            data["pid"] = os.getpid()
            data["resumed"] = int(data.get("resumed", 0)) + 1
        else:
            data = {
                "version": VERSION, "run_id": os.urandom(16).hex(), "plan": plan, "boot_id": boot,
                "pid": os.getpid(), "started": time.time(), "state": "running", "steps": {},
                "changes": data["changes"], "made": data["made"],
            }
        journal.data, journal.run_id, journal.resuming = data, str(data["run_id"]), resuming
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

    def _open_log(self, *, truncate: bool) -> None:
        if self._log_fd >= 0:
            os.close(self._log_fd)
            self._log_fd = -1
        fd = statedir.open_file(self._dir_fd, LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        assert fd is not None
        if truncate:
            os.ftruncate(fd, 0)  # checked first: never truncate through a planted link
        self._log_fd = fd

    def _compact(self, *, keep_gen: bool = False) -> None:
        """Write the whole document under a new generation, and start an empty log for it."""
        if not keep_gen:
            self.data["gen"] = os.urandom(16).hex()  # events of older logs no longer apply
        self.data["updated"] = time.time()
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        # /run is volatile: atomicity matters (a reader or a resumed run after kill -9), fsync does not.
        replace_at(self._dir_fd, NAME, text.encode(), mode=0o600, durable=False)
        self._open_log(truncate=True)

    def _event(self, event: dict[str, Any]) -> None:
        event.update(run_id=self.run_id, gen=self.data["gen"], time=time.time())
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        _replay(self.data, line)
        os.write(self._log_fd, line)  # one write with O_APPEND: a line is whole or torn

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
        self._event({"event": "child", "step": name, "child": pid, "child_start": start_time(pid)})

    def change(self, step: str, record: Record) -> None:
        """``step`` is about to make the change ``record`` describes: kept before it is made.
        A change that cannot be reverted is kept once (undo only has to say so once), so
        applying the same snippets again and again does not grow the store."""
        entry = {"step": step, "record": record.to_json()}
        if isinstance(record, NotReverted):
            if self._said is None:
                self._said = {json.dumps(c, sort_keys=True) for c in self.data["changes"]
                              if isinstance(c, dict) and isinstance(c.get("record"), dict)
                              and c["record"].get("type") == NotReverted.TYPE}
            key = json.dumps(entry, sort_keys=True)
            if key in self._said:
                return
            self._said.add(key)
        self._event({"event": "change", **entry})

    def step_done(self, result: StepResult) -> None:
        from freshroot.plan.result import Status

        state = {Status.FAILED: "failed", Status.SKIPPED: "skipped"}.get(result.status, "done")
        event: dict[str, Any] = {"event": "done", "step": result.name, "state": state,
                                 "status": str(result.status), "actions": list(result.actions)}
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

    def changes(self) -> list[tuple[str, Record]]:
        """The recorded changes, oldest first, as (step, typed record)."""
        return [(str(c.get("step")) if isinstance(c, dict) else "", from_json(c.get("record") if isinstance(c, dict)
                                                                              else c))
                for c in self.data["changes"]]

    def drop_changes(self, indices: Collection[int]) -> None:
        """Forget the changes at ``indices`` of :meth:`changes` (after undo reverted them)."""
        self.data["changes"] = [c for i, c in enumerate(self.data["changes"]) if i not in indices]
        self._said = None
        self._compact()

    def remove(self) -> None:
        """Remove the store, the lock file and the directories freshroot made for them (after
        a complete undo: the root is as it was). The caller holds the lock: whoever opened the
        lock file meanwhile finds it unlinked after flock, and opens the new one."""
        for name in (LOG, NAME, LOCK_NAME):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self._dir_fd)
        made = [str(p) for p in self.data.get("made", [])]
        self.close()
        for path in sorted(made, key=len, reverse=True):
            parent, _, name = path.rpartition("/")
            with contextlib.suppress(OSError):
                dir_fd = statedir.chase_dir(self.root_fd, parent or "/")
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                finally:
                    os.close(dir_fd)
