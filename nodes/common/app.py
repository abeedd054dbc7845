"""Every node serves two listeners, as the Nuts node does: a public API and an internal
(administrative) API. Health and status live on the internal one."""

from __future__ import annotations

import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from nodes import __version__
from nodes.common.http import HttpError, problem_response
from protocols.nodeconfig import NodeConfig
from protocols.openapi import UnknownApiDocument, load_document

IMPLEMENTATION = "health-network-testbed reference node"
Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]
T = TypeVar("T")


@dataclass
class NodeApps:
    public: Starlette
    internal: Starlette
    # The internal listener always requires one. "optional": ask for one but let a client
    # without one in: a listener whose callers are known by tokens, some also by certificates
    # (the station), or a deliberately faulty node of the mutation self-test.
    public_client_certificates: bool | Literal["optional"] = False


ErrorRenderer = Callable[[Request, HttpError], Response]


def render_problem(_: Request, error: HttpError) -> Response:
    return problem_response(error)


def state_of(request: Request, kind: type[T]) -> T:
    """The node object a route handler works on: `build_apps(node=...)` puts it on both apps,
    so that handlers are plain functions at module level and route tables are plain lists."""
    node = request.app.state.node
    if not isinstance(node, kind):
        raise TypeError(f"this app serves a {type(node).__name__}, not a {kind.__name__}")
    return node


def build_apps(
    config: NodeConfig,
    *,
    public_routes: Sequence[BaseRoute],
    internal_routes: Sequence[BaseRoute],
    lifespan: Lifespan | None = None,
    public_errors: ErrorRenderer = render_problem,
    public_client_certificates: bool | Literal["optional"] = False,
    node: object = None,
    plain_status: bool = False,
) -> NodeApps:
    """`public_errors` renders refusals of the public API in the role's own error format
    (a data station answers FHIR OperationOutcomes); the internal API uses problem+json.
    `node`: the role's node object, which handlers reach with `state_of`. `plain_status`: answer
    `GET /status` with a plain "OK", as a Nuts node does; the role, product and version are then
    read from `GET /status/diagnostics`, which every node serves."""

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "UP"})

    identity = {
        "name": config.name,
        "role": config.role,
        "organisation": config.organisation.id,
        "implementation": IMPLEMENTATION,
        "version": __version__,
    }
    started = time.monotonic()

    async def status(_: Request) -> Response:
        if plain_status:
            return PlainTextResponse("OK")
        return JSONResponse(identity)

    async def diagnostics(_: Request) -> Response:
        # The shape of a Nuts node's diagnostics (engine -> facts), as JSON; the `testbed`
        # section is this project's own and names the role and the product.
        uptime = f"{int(time.monotonic() - started)}s"
        return JSONResponse(
            {
                "status": {"software_version": __version__, "git_commit": "", "os_arch": _os_arch(), "uptime": uptime},
                "testbed": identity,
            }
        )

    internal = [
        Route("/health", health),
        Route("/status", status),
        Route("/status/diagnostics", diagnostics),
        *_api_document(config.role, "internal"),
        *internal_routes,
    ]
    public = [*_api_document(config.role, "public"), *public_routes]
    apps = NodeApps(
        public=Starlette(routes=public, exception_handlers=_handlers(public_errors), lifespan=lifespan),
        internal=Starlette(routes=internal, exception_handlers=_handlers(render_problem)),
        public_client_certificates=public_client_certificates,
    )
    apps.public.state.node = apps.internal.state.node = node
    return apps


def _os_arch() -> str:
    return f"{platform.system().lower()}/{platform.machine()}"


def _api_document(role: str, listener: str) -> list[BaseRoute]:
    """`GET /openapi.json`: the listener's API as the project describes it (protocols.openapi)."""
    try:
        document = load_document(f"{role}-{listener}")
    except UnknownApiDocument:
        return []

    async def serve(_: Request) -> Response:
        return JSONResponse(document)

    return [Route("/openapi.json", serve, methods=["GET"])]


def _handlers(render: ErrorRenderer) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpError)
        return render(request, exc)

    async def not_found(request: Request, _: Exception) -> Response:
        return render(request, HttpError(404, "Not Found", f"no resource at {request.url.path}"))

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        # Starlette's exception carries the Allow header (RFC 9110, section 15.5.6).
        headers = dict(getattr(exc, "headers", None) or {})
        detail = f"{request.method} is not allowed on {request.url.path}"
        return render(request, HttpError(405, "Method Not Allowed", detail, headers=headers))

    return {HttpError: refused, 404: not_found, 405: method_not_allowed}
