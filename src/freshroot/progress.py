"""Progress of long work: migrate, audit --sizes, image build.

One :class:`Progress` per command, in one of three modes, chosen by :func:`for_command`:

- ``TERMINAL`` (stderr is a terminal, TERM is not ``dumb``): one line on stderr, redrawn in
  place every ``interval`` seconds by a small thread, with the phase, bytes and entries done
  (of the total when known), the rate, and the time left;
- ``LINES`` (stderr is a pipe, a file, the journal): one line per phase when it ends, with
  what it did, how long it took and the rate, so a log shows where the time went;
- ``OFF`` (``--json``, or nothing asked for): nothing at all.

The work itself only adds to counters (:meth:`Progress.advance`, a few attribute updates):
nothing is written from the loop that copies, so measuring costs nothing measurable. An
external program (mksquashfs) is followed by a ``probe`` that the drawing thread calls (the
size of the file it writes).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TextIO

# What work loops are handed: advance(entries, bytes). A plain callable, so freshroot.fs
# needs nothing from this module.
Tick = Callable[[int, int], None]


class Mode(Enum):
    OFF = "off"
    LINES = "lines"
    TERMINAL = "terminal"


def choose_mode(stream: TextIO, *, json: bool = False) -> Mode:
    """OFF with --json; TERMINAL on a terminal that can move the cursor; else LINES."""
    if json:
        return Mode.OFF
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty and os.environ.get("TERM", "") != "dumb":
        return Mode.TERMINAL
    return Mode.LINES


def size(n: float) -> str:
    """Bytes for people: 812.4 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "TiB":
            break
        n /= 1024
    else:
        unit = "TiB"
    return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"


def duration(seconds: float) -> str:
    """1 h 02 min, 3 min 05 s, 12 s, 0.4 s."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Counters of the current phase, and whoever shows them (see the module's doc)."""

    def __init__(self, mode: Mode = Mode.OFF, stream: TextIO | None = None, *, interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.mode = mode
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.clock = clock
        self.name = ""
        self.entries = self.bytes = 0
        self.total_entries: int | None = None
        self.total_bytes: int | None = None
        self.probe: Callable[[], int] | None = None
        self.started = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False

    @property
    def enabled(self) -> bool:
        return self.mode is not Mode.OFF

    def advance(self, entries: int = 0, nbytes: int = 0) -> None:
        """Count work done: called from the work loop, never writes."""
        self.entries += entries
        self.bytes += nbytes

    @contextmanager
    def phase(self, name: str, *, entries: int | None = None, nbytes: int | None = None,
              probe: Callable[[], int] | None = None) -> Iterator[Progress]:
        """Count one phase (``copy /var/lib/app``): totals where known make a rate an ETA.
        ``probe``: bytes done, asked for at each redraw (an external program's output)."""
        self.name, self.entries, self.bytes = name, 0, 0
        self.total_entries, self.total_bytes, self.probe = entries, nbytes, probe
        self.started = self.clock()
        if self.mode is Mode.TERMINAL:
            self._draw()
            self._stop.clear()
            self._thread = threading.Thread(target=self._tick, name="freshroot-progress", daemon=True)
            self._thread.start()
        ok = False
        try:
            yield self
            ok = True
        finally:
            if self._thread is not None:
                self._stop.set()
                self._thread.join()
                self._thread = None
            self._clear()
            if self.mode is Mode.LINES and ok:
                self.stream.write(self.summary() + "\n")
                self.stream.flush()
            self.probe = None

    # --- what is shown ---------------------------------------------------------------------

    def _done_bytes(self) -> int:
        if self.probe is not None:
            try:
                return self.probe()
            except OSError:
                return self.bytes
        return self.bytes

    def status(self) -> str:
        """The terminal's line: ``copy /var/lib/app: 812.0 MiB of 1.7 GiB, 5,000 of 12,345
        entries, 75.3 MiB/s, 12 s left``."""
        elapsed = max(self.clock() - self.started, 1e-9)
        done = self._done_bytes()
        parts = [size(done) + (f" of {size(self.total_bytes)}" if self.total_bytes is not None else "")]
        if self.entries or self.total_entries:
            parts.append(f"{self.entries:,}" + (f" of {self.total_entries:,}" if self.total_entries else "")
                         + " entries")
        if elapsed >= 0.5 and done:
            rate = done / elapsed
            parts.append(f"{size(rate)}/s")
            if self.total_bytes is not None and rate > 0:
                parts.append(f"{duration(max(self.total_bytes - done, 0) / rate)} left")
        else:
            parts.append(duration(elapsed))
        return f"{self.name}: " + ", ".join(parts)

    def summary(self) -> str:
        """The line a phase leaves without a terminal: what it did, how long, how fast."""
        elapsed = max(self.clock() - self.started, 1e-9)
        done = self._done_bytes()
        parts = [size(done)]
        if self.entries:
            parts.append(f"{self.entries:,} entries")
        text = f"{self.name}: " + ", ".join(parts) + f" in {duration(elapsed)}"
        return text + (f" ({size(done / elapsed)}/s)" if done and elapsed >= 0.05 else "")

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def _draw(self) -> None:
        line = self.status()
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        if columns <= 0:  # a pseudo-terminal nobody sized: $COLUMNS, else 80
            columns = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 80
        with self._lock:
            self.stream.write("\r\x1b[K" + line[: max(columns - 1, 10)])
            self.stream.flush()
            self._drawn = True

    def _clear(self) -> None:
        with self._lock:
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._drawn = False


OFF = Progress(Mode.OFF)


def for_command(*, json: bool = False, stream: TextIO | None = None) -> Progress:
    """The Progress a command shows on ``stream`` (stderr): see :func:`choose_mode`."""
    stream = stream if stream is not None else sys.stderr
    return Progress(choose_mode(stream, json=json), stream)
