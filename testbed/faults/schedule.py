"""A load run's fault schedule: faults done to the network at given times while the load
runs, each undone after its `for:`, and whatever is still in force undone when the run ends
or is interrupted.

An entry is given in the scenario's `load: faults:` or on the command line (`--fault`, the
compact form below); it is checked against the scenario, the network, the run's length and
its runtime before anything starts (`plan_schedule`). While Locust runs, `FaultScheduler`
does the entries in a thread of its own through what the run's faults are done with
(`NodeFaults.step`: nodes and links alike), and records each with the moment it was done and
undone, for the report's fault windows.

The compact form: `AT[+FOR]:TARGET:OPERATION[:NAME=VALUE]...`
- AT, FOR: durations (10, 10s, 1m30s, 250ms); without +FOR the fault holds to the end.
- TARGET: a node (`hospital-station`, `holder.station`) or a link, its two ends joined by `~`
  (`gp-station~consent`).
- OPERATION and any NAME=VALUE (a NAME alone: true) are the fault's own fields, as a fault
  step writes them: `10s+8s:holder.station:stop`, `5s+5s:gp-station~consent:delay:ms=300`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from testbed import interrupts
from testbed.errors import ConfigError
from testbed.faults.nodes import RUNTIMES_WITH_FAULTS
from testbed.report.model import FaultWindow
from testbed.scenario.durations import parse_duration
from testbed.scenario.load_settings import LoadSettings, ScheduledFault
from testbed.scenario.loader import LoadedScenario, resolve_fault
from testbed.scenario.models import HARNESS_END, Fault
from testbed.topology import Network, UrlImplementation

Progress = Callable[[str], None]
# How each fault that lasts is undone; a restart is over once done. Anything else (start,
# resume, heal, clear) undoes faults: in a schedule, a fault's `for:` says when it is undone.
UNDO = {"stop": "start", "kill": "start", "pause": "resume", "cut": "heal", "delay": "heal", "lose": "heal"}
DONE_AT_ONCE = ("restart",)
LINK_JOIN = "~"
COMPACT_FORM = "AT[+FOR]:TARGET:OPERATION[:NAME=VALUE]..."
EXAMPLES = "10s+8s:holder.station:stop, 5s:consent:pause, 5s+5s:gp-station~consent:delay:ms=300"
POLL_SECONDS = 0.05


# --- the compact form of the command line ------------------------------------------------------


def parse_fault_option(text: str) -> ScheduledFault:
    """One `--fault` value as a schedule entry; a ValueError says what is wrong with it."""
    parts = text.strip().split(":")
    if len(parts) < 3 or not all(parts[:3]):
        raise ValueError(f"write {COMPACT_FORM}, e.g. {EXAMPLES}")
    when, target, operation, *options = parts
    at, plus, lasting = when.partition("+")
    entry: dict[str, Any] = {"at": _seconds(at, "AT")}
    if plus:
        entry["for"] = _seconds(lasting, "FOR")
    fault: dict[str, Any] = {"operation": operation}
    if LINK_JOIN in target:
        ends = target.split(LINK_JOIN)
        if len(ends) != 2 or not all(ends):
            raise ValueError(f"a link is two ends joined by {LINK_JOIN!r} (gp-station~consent), not {target!r}")
        fault["link"] = ends
    else:
        fault["node"] = target
    for option in options:
        name, equals, value = option.partition("=")
        if not name:
            raise ValueError(f"{option!r}: write NAME=VALUE (ms=300, ratio=0.3) or a NAME alone for true")
        fault[name] = value if equals else True
    entry["fault"] = fault
    try:
        return ScheduledFault.model_validate(entry)
    except ValidationError as exc:
        raise ValueError(validation_problems(exc)) from None


def _seconds(text: str, what: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def validation_problems(exc: ValidationError) -> str:
    """A model's complaints about a compact entry, in one line, each with the field it is about."""
    said = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        said.append(f"{where}: {message}" if where else message)
    return "; ".join(said)


# --- the schedule checked before anything starts -----------------------------------------------


@dataclass(frozen=True)
class PlannedFault:
    """A schedule entry checked and with its node, or its link's ends, by node name."""

    entry: int  # its place in the schedule, from 1
    given: str  # where it was given, for messages and the report
    at: float
    lasting: float | None  # its `for:`; None: to the end of the run (a restart: until done)
    fault: Fault
    undo: Fault | None  # what undoes it; None for a restart

    @property
    def operation(self) -> str:
        return str(self.fault.operation)

    @property
    def targets(self) -> list[str]:
        link = getattr(self.fault, "link", None)
        return [str(end) for end in link] if link else [str(self.fault.node)]

    def describe(self) -> str:
        """In words, with node names: "stop hospital-station", "delay gp-station <-> consent by 300 ms"."""
        link = getattr(self.fault, "link", None)
        if link:
            joined = " -> " if getattr(self.fault, "one_way", False) else " <-> "
            what = f"{self.operation} {joined.join(link)}"
        else:
            what = f"{self.operation} {self.fault.node}"
        if (ms := getattr(self.fault, "ms", None)) is not None:
            what += f" by {ms} ms"
        if (ratio := getattr(self.fault, "ratio", None)) is not None:
            what += f", {ratio:.0%} of connections lost"
        return what

    def span(self, end_of_run: float) -> tuple[float, float]:
        """Seconds after the load began that it is meant to hold for."""
        if self.fault.operation in DONE_AT_ONCE:
            return self.at, self.at
        return self.at, self.at + self.lasting if self.lasting is not None else end_of_run

    def window(self) -> FaultWindow:
        """Its record in the results, before it is done."""
        return FaultWindow(
            entry=self.entry,
            given=self.given,
            fault=self.describe(),
            operation=self.operation,
            targets=self.targets,
            at_s=self.at,
            for_s=self.lasting,
        )


def schedule_sources(loaded: LoadedScenario, options: list[str] | None) -> list[str]:
    """Where each entry of the run's schedule was given: the `--fault` values when there are
    some (they replace the scenario's schedule), else the lines of the scenario's `load: faults:`."""
    if options is not None:
        return [f"--fault {text!r}" for text in options]
    load = loaded.scenario.load
    count = len(load.faults) if load is not None else 0
    return [loaded.document.where(("load", "faults", index)) for index in range(count)]


def plan_schedule(
    loaded: LoadedScenario, network: Network, settings: LoadSettings, *, sources: list[str], runtime: str
) -> list[PlannedFault]:
    """The run's schedule checked against the scenario, the network, the run's length and its
    runtime (`runtime`: the one its nodes run on). Raises ConfigError naming every entry that
    cannot be done, and why."""
    if not settings.faults:
        return []
    problems: list[str] = []
    if runtime not in RUNTIMES_WITH_FAULTS:
        problems.append(
            f"the {runtime} runtime cannot do faults (the {' and '.join(RUNTIMES_WITH_FAULTS)} runtimes can): "
            "run without a fault schedule, or on one of those"
        )
    planned: list[PlannedFault] = []
    for index, (scheduled, given) in enumerate(zip(settings.faults, sources, strict=True), start=1):
        said = [f"{given}: fault {index}: {problem}" for problem in _entry_problems(scheduled, settings.duration)]
        resolved = _resolved(scheduled.fault, loaded, network, said, f"{given}: fault {index}")
        problems.extend(said)
        if not said and resolved is not None:
            planned.append(_planned(index, given, scheduled, resolved))
    problems.extend(_overlaps(planned, settings.duration))
    if problems:
        raise ConfigError("the fault schedule cannot be done:\n  " + "\n  ".join(problems))
    return planned


def _entry_problems(scheduled: ScheduledFault, run_seconds: float) -> list[str]:
    fault, lasting = scheduled.fault, scheduled.for_
    operation = fault.operation
    if fault.clear or operation is None:
        return ["'clear' undoes every fault in force; in a schedule each fault is undone after its 'for:'"]
    problems = []
    if operation in DONE_AT_ONCE:
        if lasting is not None:
            problems.append(f"a {operation} is over once the node is up again: give it no 'for:'")
    elif operation not in UNDO:
        problems.append(
            f"'{operation}' undoes a fault: give the fault itself a 'for:' instead (faults that can be undone: "
            f"{', '.join(UNDO)}; a restart is over once done)"
        )
    if scheduled.at >= run_seconds:
        problems.append(f"it is due at {scheduled.at:g} s, when the run of {run_seconds:g} s is over")
    elif lasting is not None and scheduled.at + lasting > run_seconds:
        problems.append(
            f"its window ends at {scheduled.at + lasting:g} s ({scheduled.at:g} s + {lasting:g} s), after the run's "
            f"end at {run_seconds:g} s: shorten it, or lengthen the run"
        )
    if HARNESS_END in (getattr(fault, "link", None) or ()):
        problems.append(
            "a link from the harness holds for the harness's own requests; under load Locust sends them, and they "
            "do not pass the link proxy: fault a link between two nodes, or the node itself"
        )
    return problems


def _resolved(fault: Fault, loaded: LoadedScenario, network: Network, problems: list[str], label: str) -> Fault | None:
    """The fault with node names (actors as the scenario casts them), or None with the problem said."""
    try:
        resolved = resolve_fault(fault, loaded.scenario.actors, network)
    except LookupError as exc:
        problems.append(f"{label}: {exc.args[0]}")
        return None
    link = getattr(resolved, "link", None)
    names = [str(end) for end in link] if link else [str(resolved.node)] if resolved.node else []
    for name in names:
        spec = next((node for _, node in network.nodes() if node.name == name), None)
        if spec is not None and isinstance(spec.implementation, UrlImplementation):
            problems.append(
                f"{label}: node {name!r} is reached by URL ({spec.implementation.url}); the harness faults only "
                "nodes the run starts, and only their connections pass its link proxy"
            )
    return resolved


def _planned(index: int, given: str, scheduled: ScheduledFault, fault: Fault) -> PlannedFault:
    undo = None
    if fault.operation in UNDO:
        undo = undo_of(fault)
    return PlannedFault(index, given, scheduled.at, scheduled.for_, fault, undo)


def undo_of(fault: Fault) -> Fault:
    """What undoes a fault that lasts: the same node or link, the undoing operation (options
    of the fault itself, as a delay's ms, are no part of it)."""
    assert fault.operation is not None
    kept = {name: value for name, value in fault.model_dump(exclude_unset=True).items() if name in ("node", "link")}
    if getattr(fault, "one_way", False):
        kept["one_way"] = True
    return Fault.model_validate({**kept, "operation": UNDO[fault.operation]})


def _overlaps(planned: list[PlannedFault], run_seconds: float) -> list[str]:
    """Two entries on one node (or one link) whose times meet: the second would find the node
    already stopped, paused or restarting, and undoing one would undo the other's fault."""
    problems = []
    for index, first in enumerate(planned):
        for second in planned[index + 1 :]:
            if _subject(first) != _subject(second):
                continue
            (a0, a1), (b0, b1) = first.span(run_seconds), second.span(run_seconds)
            if a0 <= b1 and b0 <= a1 and not (a1 == b0 and first.undo) and not (b1 == a0 and second.undo):
                problems.append(
                    f"{second.given}: fault {second.entry} ({second.describe()}, {b0:g} s to {b1:g} s) falls on "
                    f"the same {'link' if len(first.targets) == 2 else 'node'} as fault {first.entry} "
                    f"({first.describe()}, {a0:g} s to {a1:g} s) while that one holds"
                )
    return problems


def _subject(planned: PlannedFault) -> tuple[str, ...]:
    return tuple(sorted(planned.targets))


# --- the schedule carried out while the load runs ----------------------------------------------


class FaultScheduler:
    """Does the planned faults at their times in a thread of its own, while the harness's main
    thread watches Locust. Times count from the moment the load began, which `began` tells
    once Locust has marked it (None until then). Leaving the `with` block, however it is left
    (the run's end, an error, Ctrl-C), stops the thread and undoes every fault still in force;
    no interrupt cuts that short."""

    def __init__(
        self,
        planned: list[PlannedFault],
        step: Callable[[Fault], str],
        *,
        began: Callable[[], float | None],
        progress: Progress = lambda _: None,
    ):
        self.planned = planned
        self.step = step
        self.began = began
        self.progress = progress
        self.windows = [entry.window() for entry in planned]
        self.origin: float | None = None  # the load's start, seconds since the epoch
        self.changed = threading.Event()  # set after each operation: a node restarted has a new process
        self._in_force: list[int] = []  # entries done and not undone, in the order they were done
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-schedule", daemon=True)

    def __enter__(self) -> FaultScheduler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        with interrupts.held():
            self._stopping.set()
            self._thread.join()
            self.undo_in_force()

    def undo_in_force(self) -> None:
        """Undo what is still in force, the last fault done first."""
        for index in reversed(list(self._in_force)):
            self._undo(index)

    def timeline(self) -> list[tuple[float, int, bool]]:
        """(seconds after the start, entry index, True to do it / False to undo it), in order;
        at one moment an undo goes first, so a node freed can be faulted again."""
        moments = [(entry.at, index, True) for index, entry in enumerate(self.planned)]
        moments += [
            (entry.at + entry.lasting, index, False)
            for index, entry in enumerate(self.planned)
            if entry.lasting is not None and entry.undo is not None
        ]
        return sorted(moments, key=lambda moment: (moment[0], moment[2], moment[1]))

    def _run(self) -> None:
        origin = self._wait_for_start()
        if origin is None:
            return
        for due, index, doing in self.timeline():
            if self._stopping.wait(max(0.0, origin + due - time.time())):
                return
            if doing:
                self._do(index)
            else:
                self._undo(index)

    def _wait_for_start(self) -> float | None:
        while not self._stopping.is_set():
            began = self.began()
            if began is not None:
                self.origin = began
                return began
            self._stopping.wait(POLL_SECONDS)
        return None

    def _since(self, moment: float) -> float:
        assert self.origin is not None
        return round(moment - self.origin, 3)

    def _do(self, index: int) -> None:
        entry, window = self.planned[index], self.windows[index]
        started = time.time()
        try:
            window.done = self.step(entry.fault)
        except Exception as exc:  # the fault is not done; the run goes on, and the report says why
            window.error = f"could not be done: {exc}"
            self.progress(f"fault {entry.entry} ({entry.describe()}) {window.error}")
            return
        finally:
            self.changed.set()
        window.start_s = self._since(started)
        if entry.undo is None:  # a restart: its window is the time it took
            window.end_s = self._since(time.time())
        else:
            self._in_force.append(index)
        self.progress(f"fault {entry.entry} at {window.start_s:.1f} s: {entry.describe()}")

    def _undo(self, index: int) -> None:
        if index not in self._in_force:
            return
        entry, window = self.planned[index], self.windows[index]
        assert entry.undo is not None
        try:
            window.undone = self.step(entry.undo)
        except Exception as exc:  # left in force: the run's own clean-up tries once more
            window.error = f"could not be undone: {exc}"
            self.progress(f"fault {entry.entry} ({entry.describe()}) {window.error}")
            return
        finally:
            self.changed.set()
        self._in_force.remove(index)
        window.end_s = self._since(time.time())
        self.progress(f"fault {entry.entry} undone at {window.end_s:.1f} s: {entry.describe()}")
