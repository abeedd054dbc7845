"""`testbed export compose` and `testbed export stack`: a network as a file that starts it the
way the docker runtime does (`docker compose up`) or the swarm runtime does (`docker stack
deploy` on a Docker Swarm): the same configuration and CA, URLs of the same form (with fixed
ports, from 21000 up, where the runtimes pick free ones), and the same bootstrap, run by a
one-shot `bootstrap` service inside the network once every node is healthy. The export folder
is also a state folder: `testbed conformance --attach --state <folder>/state` replays
scenarios against the started network (and `testbed load --attach` puts it under load).

    <out>/docker-compose.yml          (compose) nodes mount their folders
    <out>/docker-stack.yml            (stack) nodes get their files as swarm configs and secrets
    <out>/network.yaml                the network file, as it was exported
    <out>/pki/                        the network CA, the trust bundle, the harness certificate
    <out>/nodes/<node>/               node.json and its certificate (at /node in the container)
    <out>/state/runs/<run id>/        the run state the harness attaches to
"""

from __future__ import annotations

import argparse
import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testbed.pki import NetworkCA, TlsFiles, write_trust_bundle
from testbed.runtime.client import harness_client
from testbed.runtime.docker import INSIDE, NODE_LABEL, REFERENCE_IMAGE, contract_environment, run_labels
from testbed.runtime.nodeconfig import container_node_dir
from testbed.runtime.plan import NetworkPlan, NodePlan, container_plan
from testbed.runtime.process import wait_healthy
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.runtime.swarm import NETWORK_KEY, STACK_FILE, StackSpec, network_stack, stack_name, write_stack
from testbed.topology import LoadedNetwork, UrlImplementation, load_network

FIRST_PORT = 21000  # public and internal ports: FIRST_PORT + 2i and + 2i + 1 for node i
MOUNT = Path("/export")  # where the bootstrap service sees the export folder


@dataclass(frozen=True)
class _Export:
    loaded: LoadedNetwork
    out: Path
    run_id: str
    plan: NetworkPlan
    ca: NetworkCA
    bundle: Path
    harness: TlsFiles

    @property
    def labels(self) -> dict[str, str]:
        return run_labels(self.run_id, self.out / "state")

    def bootstrap_command(self) -> list[str]:
        return ["python", "-m", "testbed.export", "bootstrap", str(MOUNT / "state" / "runs" / self.run_id)]


def _prepare(loaded: LoadedNetwork, out: Path, run_id: str) -> _Export:
    if any(isinstance(n.implementation, UrlImplementation) for _, n in loaded.network.nodes()):
        raise ValueError("an exported network starts every node itself: url: implementations cannot be exported")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(loaded.path, out / "network.yaml")
    ca = NetworkCA.open(out / "pki" / "ca", loaded.network.name)
    bundle = write_trust_bundle(out / "pki" / "trust-bundle.pem", ca, [])
    harness = ca.issue(out / "pki" / "harness", "testbed harness", ["localhost", "bootstrap"])
    return _Export(loaded, out, run_id, _plan(loaded), ca, bundle, harness)


def _save_state(export: _Export, runtime: str, containers: dict[str, str]) -> None:
    """The run state the harness attaches to (`containers`: each node's container or service);
    `testbed down` keeps the nodes' logs in <out>/reports/<run id>/logs/."""
    folder = RunFolder(export.out / "state", export.out / "reports", export.run_id)
    folder.state_dir.mkdir(parents=True, exist_ok=True)
    state = RunState(
        run_id=export.run_id,
        runtime=runtime,
        network_file=str(export.out / "network.yaml"),
        network_sha256=export.loaded.sha256,
        trust_bundle=str(export.bundle.resolve()),
        client_cert=str(export.harness.cert.resolve()),
        client_key=str(export.harness.key.resolve()),
        nodes=[
            NodeState(plan=n, container=containers[n.name], log_path=str(folder.logs_dir / f"{n.name}.log"))
            for n in export.plan.nodes
        ],
    )
    folder.save(state)
    folder.mark_current()


def export_compose(loaded: LoadedNetwork, out: Path, image: str = REFERENCE_IMAGE) -> Path:
    export = _prepare(loaded, out, f"compose-{loaded.network.name}")
    run_id, plan, labels = export.run_id, export.plan, export.labels
    services: dict[str, Any] = {}
    for node in plan.nodes:
        services[node.name] = _service(loaded, plan, node, out, export.ca, export.bundle, run_id, image)
    services["bootstrap"] = {
        "image": image,
        "container_name": f"{run_id}-bootstrap",
        "entrypoint": export.bootstrap_command(),
        "volumes": [f"./:{MOUNT}"],
        "depends_on": [n.name for n in plan.nodes],
        "labels": labels,
        "networks": ["testbed"],
        "restart": "no",
    }
    compose = {
        "version": "3.8",  # read by docker-compose 1.29 and by `docker compose` alike
        "services": services,
        "networks": {"testbed": {"name": f"testbed-{run_id}", "labels": labels}},
    }
    (out / "docker-compose.yml").write_text(
        f"# Made by `testbed export compose`. `docker compose -p {run_id} up -d` (or docker-compose)\n"
        "# starts the network and bootstraps it.\n" + yaml.safe_dump(compose, sort_keys=False),
        encoding="utf-8",
    )
    _save_state(export, "docker", {n.name: f"{run_id}-{n.name}" for n in plan.nodes})
    return out / "docker-compose.yml"


def export_stack(loaded: LoadedNetwork, out: Path, image: str = REFERENCE_IMAGE) -> Path:
    """The network as a stack file for `docker stack deploy`: the swarm runtime's services,
    and a bootstrap service on a manager, which reads and writes the export folder there (so
    the stack is deployed on that machine, from the export folder)."""
    export = _prepare(loaded, out, f"stack-{loaded.network.name}")
    spec = StackSpec(run_id=export.run_id, state_root=out / "state", folder=out, image=image)
    stack = network_stack(loaded, export.plan, spec, ca=export.ca, trust_bundle=export.bundle)
    stack["services"]["bootstrap"] = {
        "image": image,
        "entrypoint": export.bootstrap_command(),
        "volumes": [f"./:{MOUNT}"],
        "labels": export.labels,
        "networks": [NETWORK_KEY],
        "deploy": {
            "endpoint_mode": "dnsrr",
            "restart_policy": {"condition": "none"},  # once, to the end
            "placement": {"constraints": ["node.role == manager"]},
            "labels": export.labels,
        },
    }
    name = stack_name(export.run_id)
    header = (
        f"# Made by `testbed export stack`. On a swarm manager, in this folder:\n"
        f"#   docker stack deploy --resolve-image never -c {STACK_FILE} {name}\n"
        "# starts the network and bootstraps it; `testbed down --state state` removes it.\n"
    )
    written = write_stack(stack, out / STACK_FILE, header)
    _save_state(export, "swarm", {n.name: f"{name}_{n.name}" for n in export.plan.nodes})
    return written


def _plan(loaded: LoadedNetwork) -> NetworkPlan:
    """The docker runtime's plan, with fixed ports: a deployment's ports should not change."""
    return container_plan(loaded, ports=itertools.count(FIRST_PORT).__next__)


def _service(
    loaded: LoadedNetwork,
    plan: NetworkPlan,
    node: NodePlan,
    out: Path,
    ca: NetworkCA,
    bundle: Path,
    run_id: str,
    image: str,
) -> dict[str, Any]:
    config = container_node_dir(loaded, plan, node, node_dir=out / "nodes" / node.name, ca=ca, trust_bundle=bundle)
    return {
        "image": node.image or image,
        "container_name": f"{run_id}-{node.name}",
        "hostname": node.name,
        "environment": contract_environment(config),
        "labels": {**run_labels(run_id, out / "state"), NODE_LABEL: node.name},
        "ports": [f"127.0.0.1:{p}:{p}" for p in (node.public_port, node.internal_port)],
        "volumes": [f"./nodes/{node.name}:{INSIDE}"],
        "networks": {"testbed": {"aliases": [node.name]}},
    }


def bootstrap_inside(state_dir: Path) -> None:
    """Run by the `bootstrap` service: wait for every node, bootstrap, record the context."""
    folder = RunFolder(state_dir.parent.parent, MOUNT / "reports", state_dir.name)
    state = folder.load()
    # Inside the network nodes are reached by name, with the export's files at their mount.
    inside = state.model_copy(deep=True)
    inside.trust_bundle = str(MOUNT / "pki" / "trust-bundle.pem")
    inside.client_cert = str(MOUNT / "pki" / "harness" / Path(state.client_cert).name)
    inside.client_key = str(MOUNT / "pki" / "harness" / Path(state.client_key).name)
    for node in inside.nodes:
        node.plan.reach_at = None
    wait_healthy(inside, print, timeout=120)
    loaded = load_network(MOUNT / "network.yaml")
    from testbed.bootstrap import bootstrap

    with harness_client(inside) as client:
        state.context = bootstrap(
            loaded.network, NetworkPlan(nodes=[n.plan for n in inside.nodes]), client, progress=print
        )
    state.context["network"]["run_id"] = state.run_id
    # The context holds URLs only; the harness on the host reaches them through the ports.
    state.status = "up"
    folder.save(state)
    print(f"bootstrapped {len(state.nodes)} nodes; the harness attaches with --state <export folder>/state")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m testbed.export")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("bootstrap").add_argument("state_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "bootstrap":
        bootstrap_inside(args.state_dir)


if __name__ == "__main__":
    main()
