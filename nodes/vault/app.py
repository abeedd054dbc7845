"""Personal data vault, Solid-pod-like (WellData): each citizen's pod holds a `lifestyle/`
container of measurements. An app reaches it only

- with a DPoP-bound access token from the vault's authorization server (Solid-OIDC binds every
  token to a key; a Bearer token is refused), scope `welldata`; and
- after the citizen approved the app's access request: the approval is an access grant, a
  revocable verifiable credential issued in the vault's name, for that pod and container only.

The citizen decides through the internal API (in a real vault: the citizen's own app, after
signing in). Revoking the grant ends the app's access at once. Every refusal names its rule
(a problem type, and for tokens a DPoP challenge)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nodes.common.app import NodeApps, build_apps
from nodes.vault.routes import apps, citizen
from nodes.vault.vault import Vault
from protocols.nodeconfig import NodeConfig


def build(config: NodeConfig) -> NodeApps:
    vault = Vault(config)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await vault.close()

    return build_apps(config, public_routes=apps.ROUTES, internal_routes=citizen.ROUTES, lifespan=lifespan, node=vault)
