"""Where a run's time goes: a stopwatch that records each phase's seconds into the results,
in the order the phases happened, for the terminal and results.json."""

from __future__ import annotations

import time


class PhaseTimer:
    """`lap(name)` records the seconds since the previous lap (or since the timer started)."""

    def __init__(self, phases: dict[str, float]) -> None:
        self.phases = phases
        self._mark = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(self.phases.get(name, 0.0) + now - self._mark, 3)
        self._mark = now
