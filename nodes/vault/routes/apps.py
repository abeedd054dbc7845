"""The apps' side (public API): reading the lifestyle container and its resources under a grant
in force, asking the citizen for access, and reading one's own request and its grant."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object
from nodes.vault import access
from nodes.vault.routes import vault_of
from nodes.vault.vault import CONTAINER, MIN_PURPOSE, container_listing, resource_of


async def read(request: Request) -> Response:
    """The container, or one resource in it, for an app the citizen granted access."""
    vault = vault_of(request)
    pod_id, resource = request.path_params["pod"], request.path_params.get("resource")
    token: dict[str, Any] = {}
    try:
        token = await vault.resources.app_token(request)
        pod = vault.pod(pod_id)
        vault.check_access(pod_id, token.get("client_id"))
        if resource is None:
            answer = container_listing(vault, pod)
        else:
            if vault.faulty("resource-reads-refused"):
                raise HttpError(403, "Forbidden", "the grant names the container only", code="access-not-granted")
            answer = resource_of(pod, resource)
    except HttpError as exc:
        vault.audit.append(pod=pod_id, client=token.get("client_id"), resource=resource, outcome=exc.status)
        raise
    vault.audit.append(pod=pod_id, client=token.get("client_id"), resource=resource, outcome=200)
    return JSONResponse(answer, media_type="application/ld+json" if resource is None else "application/fhir+json")


async def ask_access(request: Request) -> Response:
    vault = vault_of(request)
    token = await vault.resources.app_token(request)
    pod = vault.pod(request.path_params["pod"])
    body = await read_json_object(request)
    purpose = body.get("purpose")
    if (not isinstance(purpose, str) or len(purpose.strip()) < MIN_PURPOSE) and not vault.faulty(
        "purpose-not-required"
    ):
        detail = f"an access request states its purpose (at least {MIN_PURPOSE} characters)"
        raise HttpError(422, "Unprocessable Entity", detail, code="purpose-missing")
    if not access.container_named(body.get("container"), CONTAINER, vault.container_url(pod["id"])):
        detail = f"this vault shares the {CONTAINER}/ container only"
        raise HttpError(422, "Unprocessable Entity", detail, code="container-not-shared")
    asked = {
        "id": str(uuid.uuid4()),
        "pod": pod["id"],
        "container": vault.container_url(pod["id"]),
        "requester": token.get("client_id"),
        "requester_ura": token.get("organization_ura"),
        "requester_name": token.get("organization_name"),
        "purpose": purpose,
        "modes": ["Read"],
        "status": "requested",
        "asked": time.time(),
    }
    vault.save(asked)
    location = {"Location": f"{vault.base}/pods/{pod['id']}/access-requests/{asked['id']}"}
    return JSONResponse(asked, status_code=201, headers=location)


async def read_request(request: Request) -> Response:
    vault = vault_of(request)
    token = await vault.resources.app_token(request)
    visible = vault.faulty("requests-visible-to-other-apps")
    pod_id, request_id = request.path_params["pod"], request.path_params["id"]
    asked = vault.apps_request(pod_id, request_id, client=token.get("client_id"), visible_to_all=visible)
    return JSONResponse(asked)


async def read_grant(request: Request) -> Response:
    """The grant credential itself, as a JSON string (the way the Nuts API hands out JWTs)."""
    vault = vault_of(request)
    anonymous = vault.faulty("grant-unauthenticated") and "authorization" not in request.headers
    token = {} if anonymous else await vault.resources.app_token(request)
    visible = anonymous or vault.faulty("grant-visible-to-other-apps")
    pod_id, request_id = request.path_params["pod"], request.path_params["id"]
    asked = vault.apps_request(pod_id, request_id, client=token.get("client_id"), visible_to_all=visible)
    if "grant" not in asked:
        detail = f"the request is {asked['status']}: no grant was issued for it"
        raise HttpError(404, "Not Found", detail, code="grant-not-issued")
    return JSONResponse(asked["grant"]["credential"])


ROUTES = [
    Route(f"/pods/{{pod}}/{CONTAINER}/", read),
    Route(f"/pods/{{pod}}/{CONTAINER}/{{resource}}", read),
    Route("/pods/{pod}/access-requests", ask_access, methods=["POST"]),
    Route("/pods/{pod}/access-requests/{id}", read_request),
    Route("/pods/{pod}/access-requests/{id}/grant", read_grant),
]
