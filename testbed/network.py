"""A network's life: plan it, start it on a runtime, bootstrap it, and tear it down again,
whatever happens in between. Runtimes start nodes; this module owns the run folder."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from testbed import interrupts
from testbed.bootstrap import bootstrap
from testbed.concurrency import each
from testbed.errors import ConfigError, NodeIdentityError, TestbedError
from testbed.files import display_path
from testbed.phases import PhaseTimer
from testbed.pki import NetworkCA, write_trust_bundle
from testbed.runtime import get_runtime
from testbed.runtime.client import harness_client
from testbed.runtime.plan import address_lock, plan_network
from testbed.runtime.state import NodeState, RunFolder, RunState, all_run_ids
from testbed.topology import LoadedNetwork

Progress = Callable[[str], None]


@dataclass
class RunningNetwork:
    folder: RunFolder
    state: RunState

    def client(self, timeout: float = 15.0, certificate: bool = True, *, via_proxy: bool = False) -> httpx.Client:
        """An HTTP client that trusts the network CA (and extra CAs of implementations) and
        presents the harness's certificate (unless `certificate` is False). `via_proxy`: every
        HTTPS connection goes through the run's link proxy, so that a fault on a link from the
        harness to a node applies to it (LinkFaultError when the run has no proxy)."""
        return harness_client(self.state, timeout, certificate, via_proxy=via_proxy)

    def node(self, name: str) -> NodeState:
        return next(n for n in self.state.nodes if n.plan.name == name)

    def log_tail(self, name: str) -> list[str]:
        return get_runtime(self.state.runtime).log_tail(self.node(name))


def start_network(
    loaded: LoadedNetwork,
    runtime_name: str,
    folder: RunFolder,
    *,
    owner_pid: int | None,
    progress: Progress,
    ca_dir: Path | None = None,
    nodes_per_process: int | None = None,
    link_proxy: bool = True,
) -> RunningNetwork:
    """`ca_dir`: keep the network CA there across runs (default: a fresh CA for this run).
    `nodes_per_process`: process runtime, how many nodes share a process (None: by size).
    `link_proxy`: False leaves the link-fault proxy out (no link can then fail): a benchmark
    measures the network, not the harness's instrument in every connection between nodes."""
    runtime = get_runtime(runtime_name)
    sweep_abandoned_runs(folder, progress)
    state = RunState(
        run_id=folder.run_id,
        runtime=runtime_name,
        network_file=str(loaded.path),
        network_sha256=loaded.sha256,
        owner_pid=owner_pid,
    )
    folder.create()  # a fresh, unique folder: outside the `try`, so a clash never removes another run's
    timer = PhaseTimer(state.phases)  # where starting a network takes its time
    try:
        folder.save(state)
        ca = NetworkCA.open(ca_dir or folder.pki_dir, loaded.network.name)
        with address_lock():
            plan = plan_network(
                loaded,
                taken_hosts=_hosts_of_other_runs(folder),
                runtime=runtime_name,
                nodes_per_process=nodes_per_process,
            )
            extra = [Path(n.ca_bundle) for n in plan.nodes if n.ca_bundle]
            state.trust_bundle = str(write_trust_bundle(folder.pki_dir / "trust-bundle.pem", ca, extra))
            harness = ca.issue(folder.pki_dir / "harness", "testbed harness", ["localhost"])
            state.client_cert, state.client_key = str(harness.cert), str(harness.key)
            timer.lap("plan")
            runtime.start(
                loaded, plan, folder, state=state, ca=ca, owner_pid=owner_pid, progress=progress, link_proxy=link_proxy
            )
            timer.lap("nodes up")  # started and answering their health checks
        running = RunningNetwork(folder, state)
        with running.client() as client:
            verify_roles(state, client)
            timer.lap("identity")
            state.context = bootstrap(loaded.network, plan, client, progress=progress)
            timer.lap("bootstrap")
        state.context["network"]["run_id"] = folder.run_id
        state.status = "up"
        folder.save(state)
        return running
    except BaseException:
        stop_network(folder, state)
        raise


def stop_network(folder: RunFolder, state: RunState) -> list[str]:
    """Stop what the run started and remove its state; neither Ctrl-C nor a termination
    signal can cut this short (they are counted: the run still ends as interrupted)."""
    with interrupts.held():
        killed = get_runtime(state.runtime).stop(state)
        state.status = "stopped"
        folder.remove_state()
        return killed


@contextlib.contextmanager
def network_session(
    loaded: LoadedNetwork,
    runtime_name: str,
    folder: RunFolder,
    *,
    owner_pid: int,
    progress: Progress,
    ca_dir: Path | None = None,
    nodes_per_process: int | None = None,
    link_proxy: bool = True,
) -> Iterator[RunningNetwork]:
    running = start_network(
        loaded,
        runtime_name,
        folder,
        owner_pid=owner_pid,
        progress=progress,
        ca_dir=ca_dir,
        nodes_per_process=nodes_per_process,
        link_proxy=link_proxy,
    )
    try:
        yield running
    finally:
        stop_network(folder, running.state)


def attach(folder: RunFolder) -> RunningNetwork:
    return RunningNetwork(folder, folder.load())


@dataclass(kw_only=True)
class NetworkOptions:
    """How a run gets its network; conformance and load runs add what they replay."""

    network_path: Path | None  # None: the network the scenarios name
    runtime: str
    folder: RunFolder
    attach: RunFolder | None = None  # use a network `testbed up` started
    ca_dir: Path | None = None  # keep the network CA here across runs
    nodes_per_process: int | None = None  # process runtime: nodes sharing a process (None: by size)
    on_progress: Progress = lambda _: None

    def network(self, loaded: LoadedNetwork) -> contextlib.AbstractContextManager[RunningNetwork]:
        return network_for_run(
            loaded,
            self.runtime,
            self.folder,
            attach_to=self.attach,
            progress=self.on_progress,
            ca_dir=self.ca_dir,
            nodes_per_process=self.nodes_per_process,
        )


@contextlib.contextmanager
def network_for_run(
    loaded: LoadedNetwork,
    runtime_name: str,
    folder: RunFolder,
    *,
    attach_to: RunFolder | None,
    progress: Progress,
    ca_dir: Path | None = None,
    nodes_per_process: int | None = None,
) -> Iterator[RunningNetwork]:
    """The network a run uses: one `testbed up` started (`attach_to`, left running, and only
    if it was started from this very network file), or a fresh one torn down afterwards."""
    if attach_to is not None:
        running = attach(attach_to)
        if running.state.network_sha256 != loaded.sha256:
            raise ConfigError(
                f"the running network was started from {running.state.network_file}, which is not "
                f"{display_path(loaded.path)} as it is now; pass --network {running.state.network_file} "
                "or start the network again"
            )
        with running.client(timeout=5.0) as client:
            verify_roles(running.state, client)
        yield running
        return
    with network_session(
        loaded,
        runtime_name,
        folder,
        owner_pid=os.getpid(),
        progress=progress,
        ca_dir=ca_dir,
        nodes_per_process=nodes_per_process,
    ) as running:
        yield running


def verify_roles(state: RunState, client: httpx.Client) -> None:
    """Every node must say which role it plays before anything is sent to it: a node of another
    role, or nothing at all, at a node's URL would otherwise be judged by the checks of a role
    it does not play (a 404 of a missing endpoint passing for a refusal). A node says it at
    `GET {internal}/status` as a JSON object with its role; a Nuts node, whose `/status` is a
    plain "OK", says it with its diagnostics (`GET {internal}/status/diagnostics`)."""
    answers = each(lambda node: _role_problem(node, client), state.nodes)
    problems = [problem for problem in answers if problem]
    if problems:
        raise NodeIdentityError("these nodes are not what the network file says:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class _Identity:
    role: str | None
    product: str | None
    version: str | None


def _role_problem(node: NodeState, client: httpx.Client) -> str | None:
    plan = node.plan
    where = f"{plan.name} (role {plan.role.value}, {plan.kind})"
    identity = _ask_identity(plan.internal_url, client)
    if isinstance(identity, str):  # asked once more: many nodes are asked at once, on one client's pool
        identity = _ask_identity(plan.internal_url, client)
    if isinstance(identity, str):
        return f"{where}: {identity}"
    if identity.role != plan.role.value:
        said = f"role {identity.role!r}" if identity.role is not None else "no role"
        return f"{where}: {plan.internal_url} says {said}; a {plan.role.value} node was expected there"
    node.product, node.version = identity.product, identity.version
    return None


def _ask_identity(internal_url: str, client: httpx.Client) -> _Identity | str:
    """The role, product and version a node states, or what went wrong asking."""
    status = _get_json(client, f"{internal_url}/status")
    if isinstance(status, dict) and "role" in status:
        return _Identity(
            role=_text(status.get("role")),
            product=_text(status.get("implementation")),
            version=_text(status.get("version")),
        )
    diagnostics = _get_json(client, f"{internal_url}/status/diagnostics")
    if isinstance(diagnostics, dict):
        return _identity_from_diagnostics(diagnostics)
    if isinstance(status, str) and isinstance(diagnostics, str):
        return f"{status}; {diagnostics}"
    return (
        f"{internal_url}/status answered no JSON object with the node's role, and "
        f"{internal_url}/status/diagnostics no JSON object with a Nuts node's diagnostics"
    )


def _identity_from_diagnostics(diagnostics: dict[str, Any]) -> _Identity:
    """A Nuts node's diagnostics: its status engine reports the software version, and the VDR
    and VCR engines (which only a trust node has) report themselves. A reference node adds
    a `testbed` section that names its role and product."""
    own = diagnostics.get("testbed")
    status = diagnostics.get("status") if isinstance(diagnostics.get("status"), dict) else {}
    version = _text(status.get("software_version")) if isinstance(status, dict) else None
    if isinstance(own, dict):
        return _Identity(role=_text(own.get("role")), product=_text(own.get("implementation")), version=version)
    is_nuts = version is not None and ("vdr" in diagnostics or "vcr" in diagnostics)
    return _Identity(role="trust" if is_nuts else None, product="nuts-node" if is_nuts else None, version=version)


def _get_json(client: httpx.Client, url: str) -> Any:
    """The JSON an URL answers with 200, or a sentence saying why there is none."""
    try:
        answer = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        return f"no answer at {url} ({exc.__class__.__name__}: {exc})"
    if answer.status_code != 200:
        return f"{url} answered {answer.status_code}"
    try:
        return answer.json()
    except ValueError:
        return f"{url} answered no JSON"


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def sweep_abandoned_runs(folder: RunFolder, progress: Progress) -> None:
    """Stop what earlier runs left behind when their harness was killed outright: their
    nodes stop themselves, but their state (keys included) would stay on disk."""
    for run_id in all_run_ids(folder.state_root):
        other = RunFolder(folder.state_root, folder.report_dir.parent, run_id)
        try:
            state = other.load()
        except TestbedError:
            continue  # not ours to judge: `testbed down --all` reports it
        if state.owner_pid is not None and not state.owner_alive():
            stop_network(other, state)
            progress(f"cleaned up run {run_id}, left by a harness process that is gone")


def _hosts_of_other_runs(folder: RunFolder) -> set[str]:
    hosts: set[str] = set()
    for run_id in all_run_ids(folder.state_root):
        if run_id == folder.run_id:
            continue
        with contextlib.suppress(Exception):
            other = RunFolder(folder.state_root, folder.report_dir.parent, run_id).load()
            hosts.update(n.plan.host for n in other.nodes if n.plan.managed)
    return hosts
