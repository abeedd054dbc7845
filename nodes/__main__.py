"""Start a reference node, `python -m nodes --config node.json`, or several in one process,
`python -m nodes --host host.json`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from nodes.common.app import NodeApps
from nodes.common.faults import UnknownFault, fault_switch
from nodes.common.host import run_host
from protocols.nodeconfig import HostConfig, NodeConfig
from protocols.settings import settings_for

# Each role's module is imported only when a node of that role starts.
ROLE_MODULES = {
    "trust": "nodes.trust.app",
    "consent": "nodes.consent.app",
    "station": "nodes.station.app",
    "hdab": "nodes.hdab.app",
    "vault": "nodes.vault.app",
}


def _builder(role: str) -> Callable[[NodeConfig], NodeApps]:
    build: Callable[[NodeConfig], NodeApps] = importlib.import_module(ROLE_MODULES[role]).build
    return build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes", description=__doc__)
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("TESTBED_CONFIG"),
        help="node configuration (JSON); default: $TESTBED_CONFIG (the container contract)",
    )
    given.add_argument("--host", type=Path, help="several nodes in this one process (a host configuration, JSON)")
    args = parser.parse_args(argv)
    if args.host is not None:
        return _run_host(args.host)
    if args.config is None:
        parser.error("give --config or --host, or set TESTBED_CONFIG")
    config = _node_config(args.config)
    if isinstance(config, str):
        print(config, file=sys.stderr)
        return 2
    return run_host([config], _build, parent_pid=config.parent_pid)


def _run_host(path: Path) -> int:
    try:
        host = HostConfig.read(path)
    except (OSError, ValueError, ValidationError) as exc:
        print(f"{path}: not a valid host configuration: {exc}", file=sys.stderr)
        return 2
    configs = [_node_config(node) for node in host.nodes]
    problems = [problem for problem in configs if isinstance(problem, str)]
    if problems:  # every node is checked before any starts: a host never starts half its nodes
        print("\n".join(problems), file=sys.stderr)
        return 2
    nodes = [config for config in configs if isinstance(config, NodeConfig)]
    return run_host(nodes, _build, control=host, parent_pid=host.parent_pid)


def _node_config(path: Path) -> NodeConfig | str:
    """The node's configuration, or what is wrong with it."""
    try:
        config = NodeConfig.read(path)
    except (OSError, ValueError, ValidationError) as exc:
        return f"{path}: not a valid node configuration: {exc}"
    if config.role not in ROLE_MODULES:
        return f"{path}: unknown role {config.role!r}; known: {', '.join(ROLE_MODULES)}"
    try:
        settings_for(config.role, config.settings)  # settings the role does not take: refused, as the harness does
        fault_switch(config)  # a misspelt defect must not start as a correct node
    except (UnknownFault, ValidationError) as exc:
        return f"{path}: settings of a {config.role} node: {exc}"
    return config


def _build(config: NodeConfig) -> NodeApps:
    return _builder(config.role)(config)


if __name__ == "__main__":
    sys.exit(main())
