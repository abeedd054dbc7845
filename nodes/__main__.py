"""Start one reference node: `python -m nodes --config node.json`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from nodes.common.app import NodeApps
from nodes.common.config import NodeConfig
from nodes.common.server import serve


def _builders() -> dict[str, Callable[[NodeConfig], NodeApps]]:
    # Imported here so a node loads only its own role's code.
    from nodes.consent.app import build as consent
    from nodes.hdab.app import build as hdab
    from nodes.station.app import build as station
    from nodes.trust.app import build as trust

    return {"trust": trust, "consent": consent, "station": station, "hdab": hdab}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="node configuration (JSON)")
    args = parser.parse_args(argv)
    try:
        config = NodeConfig.read(args.config)
    except (OSError, ValueError, ValidationError) as exc:
        print(f"{args.config}: not a valid node configuration: {exc}", file=sys.stderr)
        return 2
    builders = _builders()
    if config.role not in builders:
        print(f"{args.config}: unknown role {config.role!r}; known: {', '.join(builders)}", file=sys.stderr)
        return 2
    serve(config, builders[config.role](config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
