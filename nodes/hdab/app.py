"""Health data access body: harvests the stations' catalogues, takes data access
applications through their states, issues permits as verifiable credentials through its own
trust node (and revokes them there), runs central analysis tasks over the stations a permit
covers, and queries the stations' audit trails for the permits it issued.

Data users reach the public API with an access token (scope `data-access`) from this body's
authorization server; the body's staff use the internal API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nodes.common.app import NodeApps, build_apps
from nodes.hdab.body import AccessBody
from nodes.hdab.routes import public, staff
from protocols.nodeconfig import NodeConfig


def build(config: NodeConfig) -> NodeApps:
    body = AccessBody(config)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await body.close()

    return build_apps(config, public_routes=public.ROUTES, internal_routes=staff.ROUTES, lifespan=lifespan, node=body)
