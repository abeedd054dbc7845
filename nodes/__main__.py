"""Start one reference node: `python -m nodes --config node.json`."""

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
from nodes.common.server import serve
from protocols.nodeconfig import NodeConfig
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
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("TESTBED_CONFIG"),
        help="node configuration (JSON); default: $TESTBED_CONFIG (the container contract)",
    )
    args = parser.parse_args(argv)
    if args.config is None:
        parser.error("give --config or set TESTBED_CONFIG")
    try:
        config = NodeConfig.read(args.config)
    except (OSError, ValueError, ValidationError) as exc:
        print(f"{args.config}: not a valid node configuration: {exc}", file=sys.stderr)
        return 2
    if config.role not in ROLE_MODULES:
        print(f"{args.config}: unknown role {config.role!r}; known: {', '.join(ROLE_MODULES)}", file=sys.stderr)
        return 2
    try:
        settings_for(config.role, config.settings)  # settings the role does not take: refused, as the harness does
        fault_switch(config)  # a misspelt defect must not start as a correct node
    except (UnknownFault, ValidationError) as exc:
        print(f"{args.config}: settings of a {config.role} node: {exc}", file=sys.stderr)
        return 2
    serve(config, _builder(config.role)(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
