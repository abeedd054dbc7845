"""Every node serves two listeners, as the Nuts node does: a public API and an internal
(administrative) API. Health and status live on the internal one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nodes import __version__
from nodes.common.config import NodeConfig
from nodes.common.http import HttpError, problem_response

Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]


@dataclass
class NodeApps:
    public: Starlette
    internal: Starlette


def build_apps(
    config: NodeConfig,
    public_routes: Sequence[BaseRoute],
    internal_routes: Sequence[BaseRoute],
    lifespan: Lifespan | None = None,
) -> NodeApps:
    async def health(_: Request) -> Response:
        return JSONResponse({"status": "UP"})

    async def status(_: Request) -> Response:
        return JSONResponse(
            {
                "name": config.name,
                "role": config.role,
                "organisation": config.organisation.id,
                "implementation": "health-network-testbed reference node",
                "version": __version__,
            }
        )

    handlers = {HttpError: _problem_handler, 404: _not_found, 405: _method_not_allowed}
    internal = [Route("/health", health), Route("/status", status), *internal_routes]
    return NodeApps(
        public=Starlette(routes=list(public_routes), exception_handlers=handlers, lifespan=lifespan),
        internal=Starlette(routes=internal, exception_handlers=handlers),
    )


async def _problem_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return problem_response(exc)


async def _not_found(request: Request, _: Exception) -> Response:
    return problem_response(HttpError(404, "Not Found", f"no resource at {request.url.path}"))


async def _method_not_allowed(request: Request, _: Exception) -> Response:
    return problem_response(
        HttpError(405, "Method Not Allowed", f"{request.method} is not allowed on {request.url.path}")
    )
