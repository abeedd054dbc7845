"""Every request of a load run with a fault schedule, one record each: when it was sent, how
long it took, and what kind of outcome it had. Locust's own files count requests per second
at best; telling the requests inside a fault window from the others needs each one's time.

Locust's processes write the records (`RecordWriter`, one file per process); the harness
reads them after the run and splits them by the fault windows (`split`).

A failed request is one of three kinds:
- refused: a clean refusal. The node answered with an error status and an error document (a
  problem, an OperationOutcome, an OAuth error, a SOAP fault: JSON or XML), or there was no
  answer at all (connection refused or reset, a timeout), which the client sees as such.
- wrong: a wrong answer. The node answered with a status that is no error, and the step's
  checks failed: it served something it should not have (data, or a yes where a no was due).
- other: everything else: an error status without an error document (a bare 502, an HTML
  page), an earlier attempt of a step that is retried, a step that failed before it sent.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from testbed.report.model import WindowFigures
from testbed.scenario.thresholds import PERCENTILES

OK, REFUSED, WRONG, OTHER = "ok", "refused", "wrong", "other"
KINDS = (OK, REFUSED, WRONG, OTHER)
PATTERN = "requests-*.csv"  # one file per Locust process that runs users


def failure_kind(status: int, content_type: str, content: bytes) -> str:
    """The kind of a failed request from its answer (`status` 0: no answer)."""
    if status == 0:
        return REFUSED
    if status < 400:
        return WRONG
    return REFUSED if error_document(content_type, content) else OTHER


def error_document(content_type: str, content: bytes) -> bool:
    """Whether an error answer says what went wrong in a form a program reads: a JSON object
    or an XML document, as its content type declares."""
    kind = content_type.lower()
    start = content.lstrip()[:1]
    return ("json" in kind and start == b"{") or ("xml" in kind and start == b"<")


@dataclass(frozen=True, slots=True)
class Record:
    start: float  # when it was sent, seconds since the epoch
    ms: float  # how long it took
    kind: str  # one of KINDS
    step: str

    @property
    def end(self) -> float:
        return self.start + self.ms / 1000


class RecordWriter:
    """The records of one Locust process, appended to a file of its own in `folder`."""

    def __init__(self, folder: Path):
        self.path = folder / f"requests-{os.getpid()}.csv"
        self.handle: IO[str] | None = None

    def write(self, start: float, ms: float, kind: str, step: str) -> None:
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("a", encoding="utf-8", newline="")
        self.handle.write(f"{start:.3f},{ms:.1f},{kind},{step}\n")

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()


def read_records(folder: Path) -> Iterator[Record]:
    """Every record the run's Locust processes wrote, file by file (a line cut short by a
    process that was stopped is left out)."""
    for path in sorted(folder.glob(PATTERN)):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                if len(row) != 4 or row[2] not in KINDS:
                    continue
                try:
                    yield Record(float(row[0]), float(row[1]), row[2], row[3])
                except ValueError:
                    continue


def rounded(ms: float) -> int:
    """A response time to two significant digits from 100 ms up, as Locust keeps them, so that
    a run's millions of requests fit a small table and its percentiles match Locust's."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10_000:
        return int(round(ms, -2))
    return int(round(ms, -3))


@dataclass
class Tally:
    """Figures of a set of requests, added one at a time."""

    requests: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    total_ms: float = 0.0
    min_ms: float = math.inf
    max_ms: float = 0.0
    times: Counter[int] = field(default_factory=Counter)  # rounded response time -> requests
    wrong_steps: Counter[str] = field(default_factory=Counter)

    def add(self, record: Record) -> None:
        self.requests += 1
        self.kinds[record.kind] += 1
        self.total_ms += record.ms
        self.min_ms = min(self.min_ms, record.ms)
        self.max_ms = max(self.max_ms, record.ms)
        self.times[rounded(record.ms)] += 1
        if record.kind == WRONG:
            self.wrong_steps[record.step] += 1

    def percentile(self, share: float) -> float | None:
        """The nearest-rank percentile: the smallest time at least `share` of the requests took
        no longer than."""
        if not self.requests:
            return None
        rank = max(1, math.ceil(share * self.requests))
        seen = 0
        for ms in sorted(self.times):
            seen += self.times[ms]
            if seen >= rank:
                return float(ms)
        return float(max(self.times))

    def figures(self, name: str, seconds: float) -> WindowFigures:
        failures = self.requests - self.kinds[OK]
        percentiles = {f"{p:g}": self.percentile(p / 100) for p in PERCENTILES}
        return WindowFigures(
            name=name,
            requests=self.requests,
            failures=failures,
            rps=self.requests / seconds if seconds > 0 else 0.0,
            failure_rate=failures / self.requests if self.requests else 0.0,
            avg_ms=self.total_ms / self.requests if self.requests else 0.0,
            min_ms=self.min_ms if self.requests else 0.0,
            max_ms=self.max_ms,
            percentiles_ms={k: v for k, v in percentiles.items() if v is not None},
            seconds=round(seconds, 3),
            refused=self.kinds[REFUSED],
            wrong=self.kinds[WRONG],
            other=self.kinds[OTHER],
            wrong_by_step=dict(self.wrong_steps.most_common()),
        )


@dataclass(frozen=True)
class Split:
    """The run's requests inside its fault windows (any of them), outside them, and per window."""

    inside: WindowFigures
    outside: WindowFigures
    windows: list[WindowFigures]


def split(records: Iterable[Record], windows: list[tuple[float, float]], *, began: float, ended: float) -> Split:
    """Each request falls inside a window it overlaps (sent before the window closed, answered
    after it opened: a request in flight when a node stopped felt the fault), else outside.
    `windows` and `began`..`ended` (the load) are seconds since the epoch."""
    inside, outside = Tally(), Tally()
    each = [Tally() for _ in windows]
    for record in records:
        hit = False
        for (start, end), tally in zip(windows, each, strict=True):
            if record.start <= end and record.end >= start:
                tally.add(record)
                hit = True
        (inside if hit else outside).add(record)
    covered = covered_seconds(windows, began=began, ended=ended)
    return Split(
        inside=inside.figures("inside fault windows", covered),
        outside=outside.figures("outside fault windows", max(0.0, ended - began - covered)),
        windows=[
            tally.figures(f"window {n}", covered_seconds([span], began=began, ended=ended))
            for n, (span, tally) in enumerate(zip(windows, each, strict=True), start=1)
        ],
    )


def covered_seconds(windows: list[tuple[float, float]], *, began: float, ended: float) -> float:
    """How much of the load's time (`began`..`ended`) the windows cover together."""
    total, reached = 0.0, began
    for start, end in sorted(windows):
        start, end = max(start, reached), min(end, ended)
        if end > start:
            total += end - start
            reached = end
    return total
