"""The journal: what an apply did, step by step, in /run/freshroot/journal.json below the root.

It is rewritten atomically (temporary file + rename) when a step starts, after each action
that records something, and when a step ends, so a reader (``status``, ``undo``, the next
apply) sees a whole document whatever moment the writer was killed at.

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

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import chase
from freshroot.fs.ops import mkdir_parents, read_fd, reopen

if TYPE_CHECKING:
    from freshroot.plan.executor import StepResult

DIRECTORY = "/run/freshroot"
NAME = "journal.json"
PATH = f"{DIRECTORY}/{NAME}"
VERSION = 1


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def read(root_fd: int) -> dict[str, Any] | None:
    """The journal of the root, or None when there is none (or it is not ours)."""
    try:
        with chase(PATH, root_fd=root_fd) as found:
            fd = reopen(found.fd, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        data = json.loads(read_fd(fd))
    except ValueError:
        return None  # written by something else: treated as absent, replaced on the next apply
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return None
    return data


@dataclass
class Journal:
    """The journal of one run. Create with :meth:`open` (under the apply lock)."""

    root_fd: int
    plan: str
    run_id: str
    data: dict[str, Any]
    resuming: bool = False
    _dir_fd: int = field(default=-1, repr=False)
    _base: dict[str, int] = field(default_factory=dict, repr=False)  # records kept from earlier runs

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
        journal._write()
        return journal

    def close(self) -> None:
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> None:
        self.data["updated"] = time.time()
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        # /run is volatile: atomicity matters (a reader or a resumed run after kill -9), fsync does not.
        replace_at(self._dir_fd, NAME, text.encode(), mode=0o644, durable=False)

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
        from freshroot.plan.executor import Status, StepResult

        return StepResult(
            name, Status(entry["status"]), actions=tuple(entry.get("actions", ())),
            reason="done by an earlier, interrupted attempt of this run", resumed=True,
        )

    def step_started(self, name: str) -> None:
        self.steps[name] = {"state": "running", "started": time.time(), "pid": os.getpid()}
        self._base[name] = len(self.data["records"].get(name, ()))
        self._write()

    def _set_records(self, name: str, records: Sequence[Mapping[str, Any]]) -> None:
        kept = self.data["records"].get(name, [])[: self._base.get(name, 0)]
        merged = kept + [dict(r) for r in records]
        if merged:
            self.data["records"][name] = merged

    def step_progress(self, name: str, actions: Sequence[str], records: Sequence[Mapping[str, Any]]) -> None:
        """After an action that recorded something: keep it, even if the step never ends."""
        self.steps.setdefault(name, {"state": "running"})["actions"] = list(actions)
        self._set_records(name, records)
        self._write()

    def step_done(self, result: StepResult, records: Sequence[Mapping[str, Any]]) -> None:
        from freshroot.plan.executor import Status

        entry = self.steps.setdefault(result.name, {})
        state = {Status.FAILED: "failed", Status.SKIPPED: "skipped"}.get(result.status, "done")
        entry.update(state=state, status=str(result.status), actions=list(result.actions),
                     finished=time.time())
        entry.pop("pid", None)
        for key in ("error", "reason"):
            value = getattr(result, key)
            if value:
                entry[key] = value
        self._set_records(result.name, records)
        self._write()

    def finish(self, ok: bool) -> None:
        self.data["state"] = "finished" if ok else "failed"
        self.data["finished"] = time.time()
        self._write()

    # --- for undo -------------------------------------------------------------------------

    def forget(self, step: str) -> None:
        """Drop the records of ``step`` (after undo reverted them)."""
        self.data["records"].pop(step, None)
        self._write()
