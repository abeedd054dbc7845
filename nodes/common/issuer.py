"""Issuing and revoking credentials in the organisation's name, through its own trust node
(the Nuts VCR API), for nodes that grant something: the access body's permits, a vault's
access grants. The organisation's subject on its trust node is named after the organisation
(bootstrap makes it so)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from nodes.common.http import HttpError
from protocols.nodeconfig import NodeConfig
from protocols.vcjwt import Jwt, credential_view


class OrganisationIssuer:
    def __init__(self, config: NodeConfig, client: httpx.AsyncClient):
        self.trust = config.peers["trust_internal"]
        self.subject = config.organisation.id
        self.client = client
        self._did: str | None = None

    async def did(self) -> str:
        """The organisation's DID as its trust node knows it (made by bootstrap, after start-up)."""
        if self._did is None:
            try:
                response = await self.client.get(f"{self.trust}/internal/vdr/v2/subject/{self.subject}")
                dids = response.json() if response.status_code == 200 else []
            except (httpx.HTTPError, ValueError):
                dids = []
            if not isinstance(dids, list) or not dids:
                raise HttpError(503, "Service Unavailable", f"the trust node has no subject {self.subject!r} yet")
            self._did = str(dids[0])
        return self._did

    async def issue(self, credential_type: str, subject: dict[str, Any], valid_days: float) -> dict[str, Any]:
        """A revocable JWT credential; returns its id, the JWT and the issuer."""
        issuer = await self.did()
        expires = time.gmtime(time.time() + valid_days * 86400)
        body = {
            "type": credential_type,
            "issuer": issuer,
            "credentialSubject": subject,
            "expirationDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", expires),
            "format": "jwt_vc",
            "withStatusList2021Revocation": True,
        }
        try:
            response = await self.client.post(f"{self.trust}/internal/vcr/v2/issuer/vc", json=body)
            jwt = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            jwt = None
        if not isinstance(jwt, str):
            raise HttpError(503, "Service Unavailable", f"the trust node did not issue the {credential_type}")
        return {"id": credential_view(Jwt.read(jwt))["id"], "credential": jwt, "issuer": issuer}

    async def revoke(self, credential_id: str) -> None:
        url = f"{self.trust}/internal/vcr/v2/issuer/vc/{quote(credential_id, safe='')}"
        try:
            response = await self.client.delete(url)
        except httpx.HTTPError as exc:
            raise HttpError(503, "Service Unavailable", f"the trust node is unreachable: {exc}") from None
        if response.status_code not in (200, 204, 409):  # 409: revoked already
            raise HttpError(503, "Service Unavailable", f"the trust node refused revocation: {response.text[:200]}")
