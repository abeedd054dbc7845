"""The faults of one run: a node stopped, killed, started, restarted, paused or resumed through
the run's runtime, and links cut, slowed down or made lossy through the run's link proxy
(testbed.faults.link_steps); each recorded with its time, and every fault still in force
remembered so that it can be undone: stopped and killed nodes started again, paused ones
resumed, faulted links healed.

The scenario engine knows none of this: the conformance runner hands it `NodeFaults.step`,
which does a fault step's fault, node or link, and the transport `NodeFaults.route` makes of
its own. A runtime knows no scenarios: it is asked for one operation on one node at a time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeGuard

import httpx

from testbed import interrupts
from testbed.errors import ConfigError, NodeStartError, TestbedError
from testbed.faults.link_steps import HarnessRoute, LinkRecord, RunLinks
from testbed.network import RunningNetwork
from testbed.runtime.docker import DockerRuntime
from testbed.runtime.process import ProcessRuntime, wait_healthy
from testbed.scenario.loader import LoadedScenario, fault_step_problems
from testbed.scenario.models import NODE_OPERATIONS, Fault, NodeOperation
from testbed.scenario.transport import Transport

Progress = Callable[[str], None]
RUNTIMES_WITH_FAULTS = ("process", "docker")
PUBLIC_PATIENCE_SECONDS = 10.0
DOCKER_NAMES = {"resume": "unpause"}  # the docker runtime's name for an operation, where it differs
InForce = Literal["down", "paused"]


class FaultsNotCleared(TestbedError):
    """A fault could not be undone: a node that does not come up again, a runtime that refuses."""


@dataclass(frozen=True)
class FaultRecord:
    """One operation done to one node: when, how long it took, and the node's state afterwards
    as the runtime reports it."""

    node: str
    operation: str
    at: datetime
    seconds: float
    state: str

    def describe(self) -> str:
        moment = self.at.strftime("%H:%M:%S.%f")[:-3]
        return f"{self.operation} {self.node} at {moment} UTC, done in {self.seconds:.2f} s (the node is {self.state})"


Record = FaultRecord | LinkRecord


class NodeFaults:
    """The faults of one run on one network: its nodes' (runtime: process or docker) and its
    links' (the run's link proxy)."""

    def __init__(self, running: RunningNetwork, *, progress: Progress = lambda _: None):
        self.running = running
        self.progress = progress
        self.records: list[Record] = []  # node and link faults, in the order they were done
        self.in_force: dict[str, InForce] = {}  # node -> its fault, in the order they were done
        self.links = RunLinks(running, progress=progress, on_record=self.records.append)
        self._routes: list[HarnessRoute] = []

    def step(self, fault: Fault) -> str:
        """Do a fault step's fault (its node or its link's ends node names, as the engine
        resolved them) and say what was done and when: the message of the step's check."""
        if fault.clear:
            started = datetime.now(UTC).strftime("%H:%M:%S")
            done = self.clear()
            if not done:
                return f"clear at {started} UTC: no fault was in force"
            return f"clear at {started} UTC: " + "; ".join(record.describe() for record in done)
        if fault.link is not None:
            return self.links.apply(fault).describe()
        if fault.node is None or not _is_node_operation(fault.operation):  # the model allows neither
            raise ConfigError("a node fault names a node and a node operation")
        return self.apply(fault.node, fault.operation).describe()

    def route(self, direct: Transport) -> Transport:
        """The transport for the engine's requests: `direct`, or through the run's link proxy
        while this run has a link from the harness faulted. Closed with `close`."""
        route = HarnessRoute(direct, self.links)
        self._routes.append(route)
        return route

    def close(self) -> None:
        """Close the clients the routes opened through the proxy."""
        for route in self._routes:
            route.close()

    @property
    def any_in_force(self) -> bool:
        return bool(self.in_force or self.links.in_force)

    def apply(self, node: str, operation: NodeOperation) -> FaultRecord:
        """One operation on one node. A paused node is resumed first when it is to be stopped,
        killed, started or restarted (a stopped process would hold the signal, and a paused
        container cannot be stopped); that resume is recorded as a fault of its own."""
        if operation not in NODE_OPERATIONS:
            raise ConfigError(f"unknown node operation {operation!r}; known: {', '.join(NODE_OPERATIONS)}")
        current = self.in_force.get(node)
        if operation == "resume" and current != "paused":
            raise TestbedError(f"cannot resume {node}: no fault of this run paused it")
        if operation == "pause" and current == "down":
            raise TestbedError(f"cannot pause {node}: it is stopped (start it first)")
        if current == "paused" and operation in ("stop", "kill", "start", "restart"):
            self._do(node, "resume")
        return self._do(node, operation)

    def clear(self) -> list[Record]:
        """Undo every fault in force: links healed, then paused nodes resumed, then stopped and
        killed ones started, each in the order it was faulted. Raises FaultsNotCleared naming
        what stayed faulted (after trying all the rest)."""
        healed, problems = self.links.heal_all()
        done: list[Record] = [*healed]
        order = sorted(self.in_force.items(), key=lambda item: item[1] != "paused")
        for node, fault in order:
            try:
                done.append(self._do(node, "resume" if fault == "paused" else "start"))
            except TestbedError as exc:
                problems.append(f"{node} ({'paused' if fault == 'paused' else 'stopped'}): {exc}")
        if problems:
            raise FaultsNotCleared("these faults could not be undone:\n  " + "\n  ".join(problems))
        return done

    def end_scenario(self, scenario: str) -> None:
        """A scenario's faults end with it: the next scenario finds the network whole."""
        if not self.any_in_force:
            return
        left = ", ".join([f"{node} {fault}" for node, fault in self.in_force.items()] + self.links.describe_in_force())
        done = self.clear()
        self.progress(f"scenario {scenario} left faults in force ({left}); undone: {len(done)} operation(s)")

    def _do(self, node: str, operation: NodeOperation) -> FaultRecord:
        at = datetime.now(UTC)
        clock = time.perf_counter()
        state = self._operate(node, operation)
        record = FaultRecord(node, operation, at, round(time.perf_counter() - clock, 3), state)
        if operation in ("stop", "kill"):
            self.in_force[node] = "down"
        elif operation == "pause":
            self.in_force[node] = "paused"
        else:
            self.in_force.pop(node, None)
        self.records.append(record)
        self.running.folder.save(self.running.state)  # a node started again has a new process id
        self.progress(f"fault: {record.describe()}")
        return record

    def _operate(self, node: str, operation: NodeOperation) -> str:
        """The runtime does it; returns the node's state afterwards. A node started again is
        healthy, and its public listener answers, before the next step runs."""
        state = self.running.state
        if state.runtime not in RUNTIMES_WITH_FAULTS:
            raise ConfigError(
                f"faults need the {' or '.join(RUNTIMES_WITH_FAULTS)} runtime; run {state.run_id} uses {state.runtime}"
            )
        if state.runtime == "process":
            status = ProcessRuntime().operate(state, node, operation, progress=_quiet)
        else:
            docker = DockerRuntime()
            status = docker.fault(state, node, DOCKER_NAMES.get(operation, operation))
            if operation in ("start", "restart", "resume"):
                one = state.model_copy(update={"nodes": [self.running.node(node)]})
                wait_healthy(one, _quiet, tail=docker.log_tail)
        if operation in ("start", "restart"):
            self._wait_public(node)
        return status

    def _wait_public(self, node: str) -> None:
        """The health check asks the internal listener; the public one may start a moment later."""
        url = self.running.node(node).plan.public_url
        deadline = time.monotonic() + PUBLIC_PATIENCE_SECONDS
        with self.running.client(timeout=2.0) as client:
            while True:
                try:
                    client.get(f"{url}/health")  # any answer will do: the listener is up
                    return
                except httpx.HTTPError as exc:
                    if time.monotonic() > deadline:
                        raise NodeStartError(f"{node}: its public listener at {url} does not answer: {exc}") from exc
                time.sleep(0.05)


def _quiet(_: str) -> None:
    """The runtime's "is healthy" lines: not news in a fault's record."""


@contextlib.contextmanager
def faults_undone(running: RunningNetwork, *, progress: Progress = lambda _: None) -> Iterator[NodeFaults]:
    """The node faults of a replay on `running`. However the replay ends (done, an error, an
    interrupt), every fault still in force is undone before the network goes, so that an
    attached network is left whole and no paused process is left behind."""
    faults = NodeFaults(running, progress=progress)
    try:
        yield faults
    except BaseException:
        with interrupts.held():
            try:
                _undo(faults, progress)
            except TestbedError as exc:  # told; the error that ended the replay is the one to report
                progress(str(exc))
            finally:
                faults.close()
        raise
    with interrupts.held():
        try:
            _undo(faults, progress)
        finally:
            faults.close()


def _undo(faults: NodeFaults, progress: Progress) -> None:
    if faults.any_in_force:
        left = [*faults.in_force, *faults.links.describe_in_force()]
        progress(f"undoing the faults still in force: {', '.join(left)}")
        faults.clear()


def _is_node_operation(operation: str | None) -> TypeGuard[NodeOperation]:
    return operation in NODE_OPERATIONS


def refuse_faults_on(runtime: str, scenarios: list[LoadedScenario]) -> None:
    """Before anything starts: a runtime that cannot do faults is not given scenarios with fault steps."""
    if runtime in RUNTIMES_WITH_FAULTS:
        return
    purpose = f"the {runtime} runtime cannot do faults (the {' and '.join(RUNTIMES_WITH_FAULTS)} runtimes can)"
    problems = [problem for loaded in scenarios for problem in fault_step_problems(loaded, purpose)]
    if problems:
        raise ConfigError("\n".join(problems))
