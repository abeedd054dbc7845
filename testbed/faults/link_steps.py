"""Link faults of one run, as fault steps set them: each cut, heal, delay or loss recorded with
its time, and the link directions this run faulted remembered, so that the end of a scenario,
a `clear` step, an error or an interrupt heals them again. The run's link proxy is the
authority on what is faulted: after each change its answer says which directions are not open.

A link from the harness to a node only fails for requests that pass the proxy: while such a
fault is in force the engine's requests go through it (`HarnessRoute`), and straight to the
nodes otherwise, so that a run without harness-side faults never pays for the detour."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from testbed.faults.links import HARNESS, LinkFaults
from testbed.faults.proxy import LinkFaultError
from testbed.network import RunningNetwork
from testbed.scenario.loader import link_directions
from testbed.scenario.models import HARNESS_END, LINK_OPERATIONS, Fault
from testbed.scenario.transport import HttpxTransport, Outgoing, Reply, Transport, TransportError

Progress = Callable[[str], None]
Direction = tuple[str, str]  # (the end that opens connections, the end they go to), as the proxy names them


@dataclass(frozen=True)
class LinkRecord:
    """One change to one link: when, how long the proxy took, and which link directions of the
    run were faulted afterwards (the proxy's own account)."""

    source: str
    target: str
    operation: str
    both_ways: bool
    detail: str  # e.g. " by 2000 ms"; "" when the operation says it all
    at: datetime
    seconds: float
    faulted: tuple[str, ...]  # every direction not open afterwards, as "a -> b"

    def describe(self) -> str:
        moment = self.at.strftime("%H:%M:%S.%f")[:-3]
        arrow = "<->" if self.both_ways else "->"
        now = f"links faulted now: {', '.join(self.faulted)}" if self.faulted else "no link is faulted now"
        return (
            f"{self.operation} link {self.source} {arrow} {self.target}{self.detail} at {moment} UTC, "
            f"done in {self.seconds:.2f} s ({now})"
        )


class RunLinks:
    """The link faults a run's fault steps set, through the run's link proxy."""

    def __init__(
        self,
        running: RunningNetwork,
        *,
        progress: Progress = lambda _: None,
        on_record: Callable[[LinkRecord], None] = lambda _: None,
    ):
        self.running = running
        self.progress = progress
        self.on_record = on_record
        self.records: list[LinkRecord] = []
        self.in_force: set[Direction] = set()  # directions this run faulted that are not open
        self._control: LinkFaults | None = None

    @property
    def harness_faulted(self) -> bool:
        """True while a link from the harness to a node is faulted: its requests must pass the proxy."""
        return any(source == HARNESS for source, _ in self.in_force)

    def apply(self, fault: Fault) -> LinkRecord:
        """Do a link fault step (its ends node names, or HARNESS_END)."""
        if fault.link is None or fault.operation not in LINK_OPERATIONS:
            raise LinkFaultError("a link fault names a link and one of " + ", ".join(LINK_OPERATIONS))
        directions = [(_proxy_name(a), _proxy_name(b)) for a, b in link_directions(fault)]
        source, target = directions[0]
        one_way = len(directions) == 1
        at, clock = datetime.now(UTC), time.perf_counter()
        shown = self._set(fault, source, target, one_way=one_way)
        faulted = _faulted(shown)
        if fault.operation != "heal":
            self.in_force.update(directions)
        self.in_force &= faulted  # what the proxy shows open is no longer this run's to heal
        both = not one_way
        record = LinkRecord(
            _shown_name(source),
            _shown_name(target),
            fault.operation,
            both,
            _detail(fault),
            at,
            _since(clock),
            _names(faulted),
        )
        self._keep(record)
        return record

    def heal_all(self) -> tuple[list[LinkRecord], list[str]]:
        """Heal every direction this run faulted, one at a time; what was healed, and a problem
        for each direction that could not be."""
        done: list[LinkRecord] = []
        problems: list[str] = []
        for source, target in sorted(self.in_force):
            at, clock = datetime.now(UTC), time.perf_counter()
            try:
                faulted = _faulted(self.control().heal(source, target, one_way=True))
            except LinkFaultError as exc:
                problems.append(f"link {_shown_name(source)} -> {_shown_name(target)}: {exc}")
                continue
            self.in_force.discard((source, target))
            self.in_force &= faulted
            record = LinkRecord(
                _shown_name(source), _shown_name(target), "heal", False, "", at, _since(clock), _names(faulted)
            )
            self._keep(record)
            done.append(record)
        return done, problems

    def describe_in_force(self) -> list[str]:
        return [f"link {_shown_name(s)} -> {_shown_name(t)}" for s, t in sorted(self.in_force)]

    def control(self) -> LinkFaults:
        """The proxy's control, reached once it is first needed (a run without link faults never asks)."""
        if self._control is None:
            self._control = LinkFaults(self.running.state)
        return self._control

    def _set(self, fault: Fault, source: str, target: str, *, one_way: bool) -> dict[str, Any]:
        control = self.control()
        if fault.operation == "cut":
            return control.cut(source, target, one_way=one_way, stall=fault.stall)
        if fault.operation == "heal":
            return control.heal(source, target, one_way=one_way)
        if fault.operation == "delay":
            assert fault.ms is not None  # the model asks for it
            return control.delay(source, target, fault.ms, one_way=one_way)
        assert fault.ratio is not None
        return control.lose(source, target, fault.ratio, one_way=one_way, stall=fault.stall)

    def _keep(self, record: LinkRecord) -> None:
        self.records.append(record)
        self.on_record(record)
        self.progress(f"fault: {record.describe()}")


class HarnessRoute:
    """The engine's transport: straight to the nodes, or through the run's link proxy while a
    link from the harness is faulted. The clients through the proxy are opened when first
    needed and closed with `close`."""

    def __init__(self, direct: Transport, links: RunLinks):
        self.direct = direct
        self.links = links
        self._proxied: HttpxTransport | None = None

    def send(self, outgoing: Outgoing) -> Reply:
        if not self.links.harness_faulted:
            return self.direct.send(outgoing)
        try:
            return self._through_proxy().send(outgoing)
        except TransportError as exc:
            faulted = ", ".join(self.links.describe_in_force())
            detail = f"{exc} (sent through the run's link proxy; this run has faulted: {faulted})"
            raise TransportError(detail, timed_out=exc.timed_out) from exc

    def _through_proxy(self) -> HttpxTransport:
        if self._proxied is None:
            running = self.links.running
            self._proxied = HttpxTransport(
                running.client(via_proxy=True), running.client(certificate=False, via_proxy=True)
            )
        return self._proxied

    def close(self) -> None:
        if self._proxied is not None:
            self._proxied.client.close()
            if self._proxied.anonymous is not None:
                self._proxied.anonymous.close()
            self._proxied = None


def _proxy_name(end: str) -> str:
    return HARNESS if end == HARNESS_END else end


def _shown_name(name: str) -> str:
    return HARNESS_END if name == HARNESS else name


def _faulted(shown: dict[str, Any]) -> set[Direction]:
    """The directions the proxy's answer lists as not open."""
    return {(str(link["from"]), str(link["to"])) for link in shown.get("links", [])}


def _names(faulted: set[Direction]) -> tuple[str, ...]:
    return tuple(f"{_shown_name(s)} -> {_shown_name(t)}" for s, t in sorted(faulted))


def _detail(fault: Fault) -> str:
    if fault.operation == "delay":
        return f" by {fault.ms} ms"
    if fault.operation == "lose":
        detail = f", losing {fault.ratio:.0%} of its connections"
        return detail + " (left unanswered)" if fault.stall else detail
    if fault.operation == "cut" and fault.stall:
        return " (connections left unanswered)"
    return ""


def _since(clock: float) -> float:
    return round(time.perf_counter() - clock, 3)
