"""Per-run caps on repeated diagnostics, so one body of junk cannot flood the log or
Sentry: each step (`invalid_response`, `lml_untrusted_library_id`, …) logs its first
LINES_PER_STEP lines and sends its first EVENTS_PER_STEP events; the rest are counted,
and the run ends with one line per step saying how many were suppressed."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

LINES_PER_STEP = 50
EVENTS_PER_STEP = 10


class Diagnostics:
    def __init__(self, lines: int = LINES_PER_STEP, events: int = EVENTS_PER_STEP) -> None:
        self.lines, self.events = lines, events
        self._logged: Counter[str] = Counter()
        self._sent: Counter[str] = Counter()
        self.suppressed_lines: Counter[str] = Counter()
        self.suppressed_events: Counter[str] = Counter()
        self._lock = threading.Lock()  # worker threads report too

    def log(self, logger: logging.Logger, step: str, message: str, *args: Any,
            level: int = logging.WARNING) -> None:
        """Log `message % args` unless the step has used its lines."""
        with self._lock:
            allowed = self._logged[step] < self.lines
            self._logged[step] += 1
            if not allowed:
                self.suppressed_lines[step] += 1
        if allowed:
            logger.log(level, message, *args)

    def may_send(self, step: str) -> bool:
        """Whether one more Sentry event of the step may go out (counted either way)."""
        with self._lock:
            self._sent[step] += 1
            if self._sent[step] <= self.events:
                return True
            self.suppressed_events[step] += 1
            return False

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"lines": dict(self.suppressed_lines), "events": dict(self.suppressed_events)}

    def summarise(self, logger: logging.Logger) -> None:
        for step in sorted(set(self.suppressed_lines) | set(self.suppressed_events)):
            logger.warning("diagnostics_suppressed step=%s lines=%d events=%d", step,
                           self.suppressed_lines[step], self.suppressed_events[step])
