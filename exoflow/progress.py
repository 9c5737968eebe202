"""A one-line progress display on stderr: entries/s, bytes/s and ETA."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from exoflow.tables import human_bytes, human_count


class Progress:
    """Redraws at most 5 times a second; silent unless ``enabled``. ``name``: the run's job, shown
    first where it is composed of several (``checksum+scan``)."""

    def __init__(self, enabled: bool, stream: TextIO = sys.stderr, name: str = "") -> None:
        self.enabled = enabled
        self.prefix = f"{name}: " if "+" in name else ""
        self.stream = stream
        self.start = time.monotonic()
        self.last = 0.0
        self.width = 0

    def update(self, entries: int, bytes_: int, listed: int, listing_done: bool, force: bool = False) -> None:
        """``entries`` done of ``listed`` (every listed entry, regular file or not); bytes read."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = entries / elapsed
        if listing_done and listed:
            pct = 100.0 * entries / listed
            eta = (listed - entries) / rate if rate > 0 else 0.0
            where = f"{human_count(entries)}/{human_count(listed)} entries {pct:5.1f}%  ETA {_clock(eta)}"
        else:
            where = f"{human_count(entries)} entries done, {human_count(listed)} listed (listing...)"
        line = f"{self.prefix}{where}  {human_count(rate)} entries/s  {human_bytes(bytes_ / elapsed)}/s  {_clock(elapsed)}"
        self.stream.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
