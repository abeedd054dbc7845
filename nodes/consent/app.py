"""Consent service (Mitz-like): citizens' consent choices, withdrawal with history kept, and
the question "may requester X see data category C of citizen P held by Y". Its state is in
service.py, its routes in routes/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from nodes.common.app import NodeApps, build_apps
from nodes.consent.routes import choices, closed_question, localisation, optouts, subscribing
from nodes.consent.service import ConsentService
from protocols.nodeconfig import NodeConfig

PUBLIC_ROUTES = [
    *subscribing.PUBLIC_ROUTES,
    *choices.PUBLIC_ROUTES,
    *localisation.PUBLIC_ROUTES,
    *optouts.PUBLIC_ROUTES,
    *closed_question.PUBLIC_ROUTES,
]
INTERNAL_ROUTES = [*choices.INTERNAL_ROUTES, *localisation.INTERNAL_ROUTES, *optouts.INTERNAL_ROUTES]


def build(config: NodeConfig) -> NodeApps:
    service = ConsentService(config)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        service.start()  # the outbox's sender: notifications left from before a restart go out too
        yield
        await service.close()

    # Mitz answers only parties with a certificate: the public listener requires one too.
    certificates: bool | Literal["optional"] = "optional" if service.faulty("mtls-optional") else True
    return build_apps(
        config,
        public_routes=PUBLIC_ROUTES,
        internal_routes=INTERNAL_ROUTES,
        lifespan=lifespan,
        public_client_certificates=certificates,
        node=service,
    )
