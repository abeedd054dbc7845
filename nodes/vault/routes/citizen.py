"""The citizen's side (internal API; in a real vault the citizen's own app, after signing in):
the pods, recording a measurement, the pod's access requests, deciding on them, revoking a
grant, and the audit log of every read."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object
from nodes.common.resource import int_param
from nodes.vault import lifestyle
from nodes.vault.routes import vault_of
from nodes.vault.vault import CONTAINER, GRANT_TYPE, MAX_GRANT_DAYS, PODS, grant_subject


async def pods(request: Request) -> Response:
    vault = vault_of(request)
    listed = vault.store.list(PODS, int_param(request, "limit", 10))
    return JSONResponse([{"id": p["id"], "bsn": p["bsn"]} for p in listed])


async def record(request: Request) -> Response:
    """The citizen's own app records a measurement in the pod's lifestyle container."""
    vault = vault_of(request)
    pod = vault.pod(request.path_params["pod"])
    try:
        body = await read_json_object(request)
        observation = lifestyle.recorded(pod["id"], body, checked=not vault.faulty("observation-passed-through"))
    except ValueError as exc:
        raise HttpError(422, "Unprocessable Entity", str(exc), code="observation-invalid") from None
    pod["observations"].append(observation)
    vault.store.put(PODS, pod["id"], pod)
    location = {"Location": f"{vault.container_url(pod['id'])}{observation['id']}"}
    return JSONResponse(observation, status_code=201, headers=location, media_type="application/fhir+json")


async def requests_of_pod(request: Request) -> Response:
    """The pod's access requests, newest first."""
    vault = vault_of(request)
    listed = sorted(vault.requests_of(vault.pod(request.path_params["pod"])["id"]), key=lambda r: -r["asked"])
    return JSONResponse(listed[1:] if vault.faulty("citizen-list-drops-newest") else listed)


async def decide(request: Request) -> Response:
    vault = vault_of(request)
    asked = vault.request_of(request.path_params["pod"], request.path_params["id"])
    decision = await read_json_object(request)
    if asked["status"] != "requested" and not vault.faulty("decision-changeable"):
        detail = f"the request is {asked['status']} already: a decision is made once"
        raise HttpError(409, "Conflict", detail, code="already-decided")
    approve, days = decision.get("approve"), decision.get("valid_days", 30)
    if not isinstance(approve, bool):
        detail = "the decision is {approve: true} or {approve: false}"
        raise HttpError(422, "Unprocessable Entity", detail, code="decision-invalid")
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= MAX_GRANT_DAYS:
        detail = f"valid_days is a number of days above 0 and at most {MAX_GRANT_DAYS}"
        raise HttpError(422, "Unprocessable Entity", detail, code="decision-invalid")
    if approve:
        asked["grant"] = {
            **await vault.issuer.issue(GRANT_TYPE, grant_subject(vault, asked), float(days)),
            "expires": time.time() + float(days) * 86400,
        }
        asked["status"] = "approved"
    else:
        asked["status"] = "denied"
    asked["decided"] = time.time()
    vault.save(asked)
    return JSONResponse(asked)


async def revoke(request: Request) -> Response:
    vault = vault_of(request)
    asked = vault.request_of(request.path_params["pod"], request.path_params["id"])
    if asked["status"] != "approved":
        detail = f"the request is {asked['status']}: there is no grant in force to revoke"
        raise HttpError(409, "Conflict", detail, code="nothing-to-revoke")
    revoked = [asked]
    if vault.faulty("revocation-ends-every-grant"):
        others = vault.requests_of(asked["pod"])
        revoked += [r for r in others if r["status"] == "approved" and r["id"] != asked["id"]]
    for grant in revoked:
        if not vault.faulty("revocation-not-published"):
            await vault.issuer.revoke(grant["grant"]["id"])
        grant["status"], grant["revoked"] = "revoked", time.time()
        vault.save(grant)
    return JSONResponse(asked)


async def audit_entries(request: Request) -> Response:
    """The record of every read of a pod (refused ones too), oldest first; `pod` keeps to one."""
    vault = vault_of(request)
    pod = request.query_params.get("pod")
    entries = vault.audit.entries(int_param(request, "limit", 1000), **({"pod": pod} if pod else {}))
    return JSONResponse(entries[:-1] if vault.faulty("audit-drops-newest") else entries)


ROUTES = [
    Route("/internal/vault/v1/pods", pods),
    Route(f"/internal/vault/v1/pods/{{pod}}/{CONTAINER}", record, methods=["POST"]),
    Route("/internal/vault/v1/pods/{pod}/access-requests", requests_of_pod),
    Route("/internal/vault/v1/pods/{pod}/access-requests/{id}/decision", decide, methods=["POST"]),
    Route("/internal/vault/v1/pods/{pod}/access-requests/{id}/revoke", revoke, methods=["POST"]),
    Route("/internal/vault/v1/audit", audit_entries),
]
