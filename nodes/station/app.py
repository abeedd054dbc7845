"""Data station: a FHIR R4 read API over synthetic BgZ data for primary use, open only to a
request with an active access token (introspected at the station's own trust node) and a
Permit from the consent service; the eOverdracht handover; aggregate analyses under a data
permit for secondary use; and a HealthDCAT-AP catalogue. Every access, allowed or refused, goes
into the hash-chained audit log. Its state is in station.py, its routes in routes/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nodes.common.app import NodeApps, build_apps
from nodes.station.routes import bgz, handover, records, secondary
from nodes.station.station import Station, fhir_error
from protocols.nodeconfig import NodeConfig

PUBLIC_ROUTES = [*bgz.ROUTES, *records.PUBLIC_ROUTES, *secondary.PUBLIC_ROUTES, *handover.PUBLIC_ROUTES]
INTERNAL_ROUTES = [*records.INTERNAL_ROUTES, *secondary.INTERNAL_ROUTES, *handover.INTERNAL_ROUTES]


def build(config: NodeConfig) -> NodeApps:
    station = Station(config)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await station.close()

    return build_apps(
        config,
        public_routes=PUBLIC_ROUTES,
        internal_routes=INTERNAL_ROUTES,
        lifespan=lifespan,
        public_errors=fhir_error,
        # Asked for, not required: FHIR clients are known by their access tokens, the consent
        # service that notifies the station by its certificate.
        public_client_certificates="optional",
        node=station,
    )
