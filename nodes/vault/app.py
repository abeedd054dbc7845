"""Personal data vault, Solid-pod-like (WellData): each citizen's pod holds a `lifestyle/`
container of measurements. An app reaches it only

- with a DPoP-bound access token from the vault's authorization server (Solid-OIDC binds every
  token to a key; a Bearer token is refused), scope `welldata`; and
- after the citizen approved the app's access request: the approval is an access grant, a
  revocable verifiable credential issued in the vault's name, for that pod and container only.

The citizen decides through the internal API (in a real vault: the citizen's own app, after
signing in). Revoking the grant ends the app's access at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.app import NodeApps, build_apps
from nodes.common.audit import AuditLog
from nodes.common.config import NodeConfig
from nodes.common.http import HttpError, outbound_client, read_json_object
from nodes.common.issuer import OrganisationIssuer
from nodes.common.resource import CHALLENGE, ResourceServer, int_param
from nodes.common.storage import DocumentStore
from nodes.vault import lifestyle

SCOPE = "welldata"
GRANT_TYPE = "AccessGrant"
CONTAINER = "lifestyle"
PODS, REQUESTS = "pods", "access_requests"
LDP_CONTEXT = {"ldp": "http://www.w3.org/ns/ldp#", "dct": "http://purl.org/dc/terms/"}


class Vault:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.store = DocumentStore(config.data_dir / "vault.sqlite")
        self.audit = AuditLog(self.store)
        self.client = outbound_client(config)
        self.resources = ResourceServer(config, self.client)
        self.issuer = OrganisationIssuer(config, self.client)
        if not self.store.count(PODS):
            pods = lifestyle.citizens(config.seed, config.name, int(config.settings.get("pods", 100)))
            self.store.put_many(PODS, [(p["id"], p) for p in pods])

    def pod(self, pod_id: str) -> dict[str, Any]:
        pod = self.store.get(PODS, pod_id)
        if pod is None:
            raise HttpError(404, "Not Found", f"no pod {pod_id} here")
        return pod

    def request_of(self, pod_id: str, request_id: str) -> dict[str, Any]:
        found = self.store.get(REQUESTS, request_id)
        if found is None or found["pod"] != pod_id:
            raise HttpError(404, "Not Found", f"no access request {request_id} for pod {pod_id}")
        return found

    async def app_token(self, request: Request) -> dict[str, Any]:
        token = await self.resources.authorise(request, {SCOPE})
        if not (token.get("cnf") or {}).get("jkt"):
            # Solid-OIDC: an access token is always bound to the app's key.
            raise HttpError(401, "Unauthorized", "this vault accepts DPoP-bound tokens only", headers=CHALLENGE)
        return token

    def granted(self, pod_id: str, client: str) -> dict[str, Any] | None:
        now = time.time()
        for candidate in self.store.list(REQUESTS):
            if (
                candidate["pod"] == pod_id
                and candidate["requester"] == client
                and candidate["status"] == "approved"
                and candidate["grant"]["expires"] > now
            ):
                return candidate
        return None

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()


def build(config: NodeConfig) -> NodeApps:
    vault = Vault(config)
    base = config.public_url

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await vault.close()

    async def read(request: Request) -> Response:
        """The container, or one resource in it, for an app the citizen granted access."""
        pod_id, resource = request.path_params["pod"], request.path_params.get("resource")
        token: dict[str, Any] = {}
        try:
            token = await vault.app_token(request)
            pod = vault.pod(pod_id)
            if vault.granted(pod_id, str(token.get("client_id"))) is None:
                raise HttpError(403, "Forbidden", "the citizen has not granted this app access to this pod")
            answer = _container(base, pod) if resource is None else _resource(pod, resource)
        except HttpError as exc:
            vault.audit.append(pod=pod_id, client=token.get("client_id"), resource=resource, outcome=exc.status)
            raise
        vault.audit.append(pod=pod_id, client=token.get("client_id"), resource=resource, outcome=200)
        return JSONResponse(answer, media_type="application/ld+json" if resource is None else "application/fhir+json")

    async def ask_access(request: Request) -> Response:
        token = await vault.app_token(request)
        pod = vault.pod(request.path_params["pod"])
        body = await read_json_object(request)
        purpose = body.get("purpose")
        if not isinstance(purpose, str) or len(purpose) < 10:
            raise HttpError(
                422, "Unprocessable Entity", "an access request states its purpose (at least 10 characters)"
            )
        if body.get("container", CONTAINER) != CONTAINER:
            raise HttpError(422, "Unprocessable Entity", f"this vault shares the {CONTAINER}/ container only")
        asked = {
            "id": str(uuid.uuid4()),
            "pod": pod["id"],
            "container": f"{base}/pods/{pod['id']}/{CONTAINER}/",
            "requester": token.get("client_id"),
            "requester_ura": token.get("organization_ura"),
            "requester_name": token.get("organization_name"),
            "purpose": purpose,
            "modes": ["Read"],
            "status": "requested",
            "asked": time.time(),
        }
        vault.store.put(REQUESTS, asked["id"], asked)
        return JSONResponse(asked, status_code=201)

    async def read_request(request: Request) -> Response:
        token = await vault.app_token(request)
        asked = vault.request_of(request.path_params["pod"], request.path_params["id"])
        if asked["requester"] != token.get("client_id"):
            raise HttpError(404, "Not Found", "no access request of yours with this id")
        return JSONResponse(asked)

    async def read_grant(request: Request) -> Response:
        """The grant credential itself, as a JSON string (the way the Nuts API hands out JWTs)."""
        token = await vault.app_token(request)
        asked = vault.request_of(request.path_params["pod"], request.path_params["id"])
        if asked["requester"] != token.get("client_id") or "grant" not in asked:
            raise HttpError(404, "Not Found", "no grant of yours for this request")
        return JSONResponse(asked["grant"]["credential"])

    # --- internal: the citizen's side -------------------------------------------------------
    async def pods(request: Request) -> Response:
        listed = vault.store.list(PODS, int_param(request, "limit", 10))
        return JSONResponse([{"id": p["id"], "bsn": p["bsn"]} for p in listed])

    async def requests_of_pod(request: Request) -> Response:
        pod = vault.pod(request.path_params["pod"])
        return JSONResponse([r for r in vault.store.list(REQUESTS) if r["pod"] == pod["id"]])

    async def decide(request: Request) -> Response:
        asked = vault.request_of(request.path_params["pod"], request.path_params["id"])
        decision = await read_json_object(request)
        if asked["status"] != "requested":
            raise HttpError(409, "Conflict", f"the request is {asked['status']} already")
        if decision.get("approve") is True:
            subject = {
                "id": asked["requester"],
                "pod": asked["pod"],
                "container": asked["container"],
                "modes": asked["modes"],
                "purpose": asked["purpose"],
            }
            days = float(decision.get("valid_days", 30))
            asked["grant"] = {
                **await vault.issuer.issue(GRANT_TYPE, subject, days),
                "expires": time.time() + days * 86400,
            }
            asked["status"] = "approved"
        elif decision.get("approve") is False:
            asked["status"] = "denied"
        else:
            raise HttpError(422, "Unprocessable Entity", "the decision is {approve: true} or {approve: false}")
        vault.store.put(REQUESTS, asked["id"], asked)
        return JSONResponse(asked)

    async def revoke(request: Request) -> Response:
        asked = vault.request_of(request.path_params["pod"], request.path_params["id"])
        if asked["status"] != "approved":
            raise HttpError(409, "Conflict", f"the request is {asked['status']}: there is no grant to revoke")
        await vault.issuer.revoke(asked["grant"]["id"])
        asked["status"] = "revoked"
        vault.store.put(REQUESTS, asked["id"], asked)
        return JSONResponse(asked)

    async def audit_entries(request: Request) -> Response:
        return JSONResponse(vault.audit.entries(int_param(request, "limit", 1000)))

    public = [
        Route(f"/pods/{{pod}}/{CONTAINER}/", read),
        Route(f"/pods/{{pod}}/{CONTAINER}/{{resource}}", read),
        Route("/pods/{pod}/access-requests", ask_access, methods=["POST"]),
        Route("/pods/{pod}/access-requests/{id}", read_request),
        Route("/pods/{pod}/access-requests/{id}/grant", read_grant),
    ]
    internal = [
        Route("/internal/vault/v1/pods", pods),
        Route("/internal/vault/v1/pods/{pod}/access-requests", requests_of_pod),
        Route("/internal/vault/v1/pods/{pod}/access-requests/{id}/decision", decide, methods=["POST"]),
        Route("/internal/vault/v1/pods/{pod}/access-requests/{id}/revoke", revoke, methods=["POST"]),
        Route("/internal/vault/v1/audit", audit_entries),
    ]
    return build_apps(config, public, internal, lifespan)


def _container(base: str, pod: dict[str, Any]) -> dict[str, Any]:
    """An LDP basic container listing the pod's lifestyle resources (JSON-LD)."""
    url = f"{base}/pods/{pod['id']}/{CONTAINER}/"
    return {
        "@context": LDP_CONTEXT,
        "@id": url,
        "@type": ["ldp:Container", "ldp:BasicContainer"],
        "ldp:contains": [{"@id": f"{url}{o['id']}"} for o in pod["observations"]],
    }


def _resource(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found = next((o for o in pod["observations"] if o["id"] == name), None)
    if found is None:
        raise HttpError(404, "Not Found", f"{CONTAINER}/{name} is not in this pod")
    return found
