"""The vault's state and rules: citizens' pods, the apps' access requests and the grants that
answer them, whether a request lets its app read a pod now, and what a grant and a container
listing say. The routes are in routes/."""

from __future__ import annotations

import time
from typing import Any

from nodes.common.audit import AuditLog
from nodes.common.faults import fault_switch
from nodes.common.http import HttpError, outbound_client
from nodes.common.issuer import OrganisationIssuer
from nodes.common.storage import DocumentStore
from nodes.vault import access, lifestyle
from nodes.vault.auth import VaultResources
from protocols.nodeconfig import NodeConfig
from protocols.settings import VaultSettings

GRANT_TYPE = "AccessGrant"
CONTAINER = "lifestyle"
PODS, REQUESTS = "pods", "access_requests"
LDP_CONTEXT = {"ldp": "http://www.w3.org/ns/ldp#", "dct": "http://purl.org/dc/terms/"}
MIN_PURPOSE = 10  # characters: a purpose the citizen can judge, not a placeholder
MAX_GRANT_DAYS = 365
# The defect that lets a request in this state open the pod (self-test only).
FAULTY_OPENS = {"requested": "read-before-approval", "denied": "denial-ignored", "revoked": "revocation-keeps-access"}


class Vault:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.base = config.public_url
        self.faulty = fault_switch(config)
        self.store = DocumentStore(config.data_dir / "vault.sqlite")
        self.audit = AuditLog(self.store)
        self.client = outbound_client(config)
        self.resources = VaultResources(config, self.client, self.faulty)
        self.issuer = OrganisationIssuer(config, self.client)
        if not self.store.count(PODS):
            pods = lifestyle.citizens(config.seed, config.name, config.role_settings(VaultSettings).pods)
            self.store.put_many(PODS, [(p["id"], p) for p in pods])

    def container_url(self, pod_id: str) -> str:
        return f"{self.base}/pods/{pod_id}/{CONTAINER}/"

    def pod(self, pod_id: str) -> dict[str, Any]:
        pod = self.store.get(PODS, pod_id)
        if pod is None:
            raise HttpError(404, "Not Found", f"no pod {pod_id} here", code="pod-not-found")
        return pod

    # Requests are kept under "<pod>/<id>": a request is found only under its own pod, and a
    # pod's requests are read without reading every other pod's.
    def requests_of(self, pod_id: str) -> list[dict[str, Any]]:
        return self.store.list(REQUESTS, key_prefix=f"{pod_id}/")

    def save(self, asked: dict[str, Any]) -> None:
        self.store.put(REQUESTS, f"{asked['pod']}/{asked['id']}", asked)

    def request_of(self, pod_id: str, request_id: str) -> dict[str, Any]:
        found = self.store.get(REQUESTS, f"{pod_id}/{request_id}")
        if found is None and self.faulty("decision-other-pod"):
            found = next((r for r in self.store.list(REQUESTS) if r["id"] == request_id), None)
        if found is None:
            detail = f"no access request {request_id} for pod {pod_id}"
            raise HttpError(404, "Not Found", detail, code="access-request-not-found")
        return found

    def apps_request(self, pod_id: str, request_id: str, *, client: Any, visible_to_all: bool) -> dict[str, Any]:
        """An app's own request: another app's is answered as if it did not exist, so that an
        app learns nothing of who else asked the citizen."""
        asked = self.store.get(REQUESTS, f"{pod_id}/{request_id}")
        if asked is None or (asked["requester"] != client and not visible_to_all):
            detail = "no access request of yours with this id"
            raise HttpError(404, "Not Found", detail, code="access-request-not-found")
        return asked

    def opens(self, asked: dict[str, Any], now: float) -> bool:
        """Whether this request lets its app read the pod now."""
        status = asked["status"]
        if status == "approved" and self.faulty("expired-grant-accepted"):
            return True
        defect = FAULTY_OPENS.get(status)
        return access.in_force(asked, now) or (defect is not None and self.faulty(defect))

    def check_access(self, pod_id: str, client: Any) -> None:
        """Nothing when the app's grant for this pod is in force; otherwise the refusal that
        says why not."""
        now = time.time()
        anywhere = self.faulty("grant-opens-any-pod")
        candidates = self.store.list(REQUESTS) if anywhere else self.requests_of(pod_id)
        mine = [r for r in candidates if r["requester"] == client]
        if any(self.opens(r, now) for r in mine):
            return
        raise access.refusal(access.newest([r for r in mine if r["pod"] == pod_id]))

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()


def grant_subject(vault: Vault, asked: dict[str, Any]) -> dict[str, Any]:
    """What the access grant names: the app it is for, the pod, the container, the modes and
    the purpose the citizen agreed to."""
    container = asked["container"]
    if vault.faulty("grant-names-pod-root"):
        container = f"{vault.base}/pods/{asked['pod']}/"
    grantee = asked["requester"]
    if vault.faulty("grant-names-citizen"):
        grantee = f"{vault.base}/pods/{asked['pod']}/profile/card#me"
    return {
        "id": grantee,
        "pod": asked["pod"],
        "container": container,
        "modes": asked["modes"],
        "purpose": asked["purpose"],
    }


def container_listing(vault: Vault, pod: dict[str, Any]) -> dict[str, Any]:
    """An LDP basic container listing the pod's lifestyle resources (JSON-LD)."""
    url = vault.container_url(pod["id"])
    observations = pod["observations"][:-1] if vault.faulty("container-drops-newest") else pod["observations"]
    members = url
    if vault.faulty("container-lists-internal-urls"):
        members = f"{vault.config.internal_url}/pods/{pod['id']}/{CONTAINER}/"
    return {
        "@context": LDP_CONTEXT,
        "@id": url,
        "@type": ["ldp:Container", "ldp:BasicContainer"],
        "ldp:contains": [{"@id": f"{members}{o['id']}"} for o in observations],
    }


def resource_of(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found = next((o for o in pod["observations"] if o["id"] == name), None)
    if found is None:
        raise HttpError(404, "Not Found", f"{CONTAINER}/{name} is not in this pod", code="resource-not-found")
    return found
