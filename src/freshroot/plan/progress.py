"""What a run shows while it runs: snippet output as it comes, and on a terminal a status line.

Each line a step prints goes to stderr prefixed with the step's name (stdout stays free for
the report or --json). When stderr is a terminal, the step being run is shown on a status
line that the next output or step replaces, so a long step says what is taking the time:
a small thread redraws it every second with the time the step has taken so far, so a step
that prints nothing for minutes (a snippet, a large bind) still shows that it is running.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from freshroot.output import unicode_ok
from freshroot.plan.action import Step
from freshroot.plan.result import StepResult


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    from freshroot.progress import duration

    return duration(seconds)


class TerminalProgress:
    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, interval: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:  # a terminal that can move the cursor (as freshroot.progress decides)
            tty = self.stream.isatty() and os.environ.get("TERM", "") != "dumb"
        self.tty = tty
        self.interval = interval
        self.head = ""  # "[3/9] persist…"
        self.status = ""  # what the status line shows now
        self.started = 0.0
        self.ellipsis = "…" if unicode_ok(self.stream) else "..."
        # The ticker and the executor's thread both write: one at a time.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def _line(self) -> str:
        elapsed = time.monotonic() - self.started
        return self.head + (f" ({_elapsed(elapsed)})" if elapsed >= 1 else "")

    def _clear(self) -> None:
        if self.tty and self.status:
            self.stream.write("\r\x1b[K")

    def _draw(self) -> None:
        if self.tty and self.status:
            try:
                columns = os.get_terminal_size(self.stream.fileno()).columns
            except (AttributeError, ValueError, OSError):
                columns = 0
            # never wider than the terminal: a wrapped line is not replaced by \r
            self.stream.write(self.status[: columns - 1] if columns > 10 else self.status)
            self.stream.flush()

    def start(self, step: Step, index: int, total: int) -> None:
        with self._lock:
            self._clear()
            self.started = time.monotonic()
            self.head = f"[{index + 1}/{total}] {step.name}{self.ellipsis}"
            self.status = self.head
            self._draw()
        if self.tty and self._ticker is None:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="freshroot-status", daemon=True)
            self._ticker.start()

    def output(self, step: Step, line: str) -> None:
        with self._lock:
            self._clear()
            self.stream.write(f"{step.name}: {line}\n")
            if self.status:
                self.status = self._line()
            self._draw()

    def finish(self, result: StepResult) -> None:
        self.close()

    def close(self) -> None:
        """Stop the ticker and clear the status line: after each step, and when a run ends
        early (Ctrl-C), so that nothing is drawn after the command's last words."""
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
        with self._lock:
            self._clear()
            self.status = ""
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self.status:
                    self._clear()
                    self.status = self._line()
                    self._draw()
