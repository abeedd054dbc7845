"""The vault's HTTP routes: the apps' side (public: the lifestyle container, access requests and
their grants) and the citizen's side (internal: pods, recording measurements, decisions,
revocation, the audit log). Handlers are module-level functions that reach the vault with
`vault_of(request)`."""

from __future__ import annotations

from starlette.requests import Request

from nodes.common.app import state_of
from nodes.vault.vault import Vault


def vault_of(request: Request) -> Vault:
    return state_of(request, Vault)
