"""What ``freshroot apply`` does with generations, under its lock once the plan has run:
keep the declaration (:func:`freshroot.generations.store.record`) and, with
``--confirm-timeout``, arm the rollback timer (:mod:`freshroot.generations.timer`)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from freshroot.generations import timer
from freshroot.generations.store import Recorded, Store, directory_for, record, storage_of
from freshroot.hints import command

if TYPE_CHECKING:
    from freshroot.config.load import Loaded
    from freshroot.plan.result import Report


class KeepGeneration:
    """The ``after`` hook of :func:`freshroot.plan.handlers.run_plan` for an apply."""

    def __init__(self, root: str, *, confirm_timeout: int | None = None) -> None:
        self.root = root
        self.confirm_timeout = confirm_timeout
        self.recorded = Recorded()
        self.previous: int | None = None
        self.notes: list[str] = []
        self.path = ""

    def __call__(self, report: Report, loaded: Loaded, plan: str, root_fd: int) -> None:
        self.path = directory_for(storage_of(loaded.table))
        with Store(root_fd, self.root, self.path) as store:
            recorded = record(store, loaded, plan, ok=report.ok)
            self.recorded = recorded
            for number in recorded.superseded:  # an unconfirmed one replaced by this apply
                old = store.get(number)
                if old is not None and old.confirm is not None:
                    timer.disarm(old.confirm.get("timer"))
                    store.update(replace(old, confirm={**old.confirm, "state": "superseded"}))
            generation = recorded.generation
            assert generation is not None
            if self.confirm_timeout is None:
                return
            if not recorded.new:
                self.notes.append(f"no change: generation {generation.number} stays; no confirm timer armed")
                return
            previous = store.previous(generation.number)
            if previous is None:
                self.notes.append(f"generation {generation.number} is the first: nothing to roll back to, "
                                  "no confirm timer armed")
                return
            self.previous = previous.number
            armed = timer.arm(generation.number, self.confirm_timeout, root=self.root, generations=self.path)
            confirm: dict[str, Any] = {"state": "pending", "deadline": time.time() + self.confirm_timeout,
                                       "previous": previous.number, "timer": armed}
            generation = replace(generation, confirm=confirm)
            store.update(generation)
            self.recorded.generation = generation
            self.notes.append(f"generation {generation.number}: `{command('confirm')}` within "
                              f"{self.confirm_timeout} s, or it rolls back to generation {previous.number} "
                              f"({armed['kind']})")

    def to_json(self) -> dict[str, Any]:
        out = self.recorded.to_json()
        out["path"] = self.path
        if self.previous is not None:
            out["previous"] = self.previous
        return out

    def note(self) -> str:
        g = self.recorded.generation
        if g is None:
            return ""
        head = f"generation {g.number} ({'new' if self.recorded.new else 'unchanged'})"
        return "\n".join([head, *self.notes])


class CurrentGeneration:
    """The ``after`` hook of ``plan --json``: which generation the root is at, and whether
    the planned declaration is that one (read only, no lock)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.info: dict[str, Any] = {}

    def __call__(self, report: Report, loaded: Loaded, plan: str, root_fd: int) -> None:
        from freshroot.generations.store import digest

        path = directory_for(storage_of(loaded.table))
        with Store(root_fd, self.root, path) as store:
            number = store.current()
            current = store.get(number) if number is not None else None
        planned = digest([raw for _, raw in loaded.contents])
        self.info = {"current": number, "digest": current.digest if current else None,
                     "confirm": current.confirm_state if current else None, "planned": planned,
                     "same": current is not None and current.digest == planned, "path": path}

    def to_json(self) -> dict[str, Any]:
        return self.info
