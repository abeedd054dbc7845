"""`testbed export compose`: a network as a docker-compose.yml that `docker compose up`
starts the way the docker runtime does: the same container names, configuration and CA, URLs
of the same form (with fixed ports, from 21000 up, where the runtime picks free ones), and the
same bootstrap, run by a one-shot `bootstrap` service inside the network once
every node is healthy. The export folder is also a state folder: `testbed conformance
--attach --state <folder>/state` replays scenarios against the composed network.

    <out>/docker-compose.yml
    <out>/network.yaml                the network file, as it was exported
    <out>/pki/                        the network CA, the trust bundle, the harness certificate
    <out>/nodes/<node>/               node.json and its certificate (mounted at /node)
    <out>/state/runs/<run id>/        the run state the harness attaches to
"""

from __future__ import annotations

import argparse
import itertools
import shutil
from pathlib import Path
from typing import Any

import yaml

from testbed.pki import NetworkCA, write_trust_bundle
from testbed.runtime.client import harness_client
from testbed.runtime.docker import INSIDE, NODE_LABEL, REFERENCE_IMAGE, contract_environment, run_labels
from testbed.runtime.nodeconfig import container_node_dir
from testbed.runtime.plan import NetworkPlan, NodePlan, container_plan
from testbed.runtime.process import wait_healthy
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.topology import LoadedNetwork, UrlImplementation, load_network

FIRST_PORT = 21000  # public and internal ports: FIRST_PORT + 2i and + 2i + 1 for node i
MOUNT = Path("/export")  # where the bootstrap service sees the export folder


def export_compose(loaded: LoadedNetwork, out: Path, image: str = REFERENCE_IMAGE) -> Path:
    if any(isinstance(n.implementation, UrlImplementation) for _, n in loaded.network.nodes()):
        raise ValueError("a composed network starts every node itself: url: implementations cannot be exported")
    out.mkdir(parents=True, exist_ok=True)
    run_id = f"compose-{loaded.network.name}"
    shutil.copy(loaded.path, out / "network.yaml")
    plan = _plan(loaded)
    ca = NetworkCA.open(out / "pki" / "ca", loaded.network.name)
    bundle = write_trust_bundle(out / "pki" / "trust-bundle.pem", ca, [])
    harness = ca.issue(out / "pki" / "harness", "testbed harness", ["localhost", "bootstrap"])
    services: dict[str, Any] = {}
    for node in plan.nodes:
        services[node.name] = _service(loaded, plan, node, out, ca, bundle, run_id, image)
    services["bootstrap"] = {
        "image": image,
        "container_name": f"{run_id}-bootstrap",
        "entrypoint": ["python", "-m", "testbed.export", "bootstrap", str(MOUNT / "state" / "runs" / run_id)],
        "volumes": [f"./:{MOUNT}"],
        "depends_on": [n.name for n in plan.nodes],
        "labels": run_labels(run_id, out / "state"),
        "networks": ["testbed"],
        "restart": "no",
    }
    compose = {
        "version": "3.8",  # read by docker-compose 1.29 and by `docker compose` alike
        "services": services,
        "networks": {"testbed": {"name": f"testbed-{run_id}", "labels": run_labels(run_id, out / "state")}},
    }
    (out / "docker-compose.yml").write_text(
        f"# Made by `testbed export compose`. `docker compose -p {run_id} up -d` (or docker-compose)\n"
        "# starts the network and bootstraps it.\n" + yaml.safe_dump(compose, sort_keys=False),
        encoding="utf-8",
    )
    folder = RunFolder(out / "state", out / "reports", run_id)
    folder.state_dir.mkdir(parents=True, exist_ok=True)
    state = RunState(
        run_id=run_id,
        runtime="docker",
        network_file=str(out / "network.yaml"),
        network_sha256=loaded.sha256,
        trust_bundle=str(bundle.resolve()),
        client_cert=str(harness.cert.resolve()),
        client_key=str(harness.key.resolve()),
        nodes=[NodeState(plan=n, container=f"{run_id}-{n.name}") for n in plan.nodes],
    )
    folder.save(state)
    folder.mark_current()
    return out / "docker-compose.yml"


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
