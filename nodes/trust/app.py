"""The trust node, on the Nuts node v6 paths (shared/REFERENCE.md, section 1): its state in
node.py, its routes in routes/ (public endpoints, VDR v2, VCR v2, auth v2, discovery)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nodes.common.app import NodeApps, build_apps
from nodes.trust import discovery
from nodes.trust.node import TrustNode
from nodes.trust.routes import auth, public, vcr, vdr
from nodes.trust.routes import discovery as discovery_routes
from protocols.nodeconfig import NodeConfig

PUBLIC_ROUTES = [*public.ROUTES, *discovery_routes.PUBLIC_ROUTES]
INTERNAL_ROUTES = [*vdr.ROUTES, *vcr.ROUTES, *auth.ROUTES, *discovery_routes.INTERNAL_ROUTES]


async def _keep_registrations_fresh(node: TrustNode) -> None:
    """Re-register discovery activations before they expire, for as long as the node runs."""
    while True:
        await asyncio.sleep(discovery.REFRESH_CHECK_SECONDS)
        try:
            await discovery.refresh_due(node)
        except Exception:  # whatever went wrong, the loop must live on to the next round
            logging.getLogger("discovery").exception("refreshing registrations failed")


def build(config: NodeConfig) -> NodeApps:
    node = TrustNode(config)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        refresher = asyncio.create_task(_keep_registrations_fresh(node))
        yield
        refresher.cancel()
        await node.close()

    return build_apps(
        config,
        public_routes=PUBLIC_ROUTES,
        internal_routes=INTERNAL_ROUTES,
        lifespan=lifespan,
        public_errors=public.render_error,
        node=node,
        # Like a Nuts node: a plain "OK" at /status, the identity in the diagnostics, so that a
        # real Nuts node and the reference are identified alike.
        plain_status=True,
    )
