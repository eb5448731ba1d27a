"""What a run shows while it runs: snippet output as it comes, and on a terminal a status line.

Each line a step prints goes to stderr prefixed with the step's name (stdout stays free for
the report or --json). When stderr is a terminal, the step being run is shown on a status
line that the next output or step replaces, so a long step says what is taking the time.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from freshroot.output import unicode_ok
from freshroot.plan.action import Step
from freshroot.plan.result import StepResult


class TerminalProgress:
    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.status = ""
        self.started = 0.0
        self.ellipsis = "…" if unicode_ok(self.stream) else "..."

    def _clear(self) -> None:
        if self.tty and self.status:
            self.stream.write("\r\x1b[K")

    def _draw(self) -> None:
        if self.tty and self.status:
            self.stream.write(self.status)
            self.stream.flush()

    def start(self, step: Step, index: int, total: int) -> None:
        self._clear()
        self.started = time.monotonic()
        self.status = f"[{index + 1}/{total}] {step.name}{self.ellipsis}"
        self._draw()

    def output(self, step: Step, line: str) -> None:
        self._clear()
        self.stream.write(f"{step.name}: {line}\n")
        if self.tty and self.status:
            elapsed = time.monotonic() - self.started
            if elapsed >= 1:
                self.status = self.status.split(" (")[0] + f" ({elapsed:.0f} s)"
        self._draw()

    def finish(self, result: StepResult) -> None:
        self._clear()
        self.status = ""
        self.stream.flush()
