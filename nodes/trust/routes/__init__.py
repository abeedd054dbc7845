"""The trust node's HTTP routes, one module per API of the Nuts node v6 (shared/REFERENCE.md,
section 1): public endpoints, subjects and DIDs (VDR v2), credentials (VCR v2), access tokens
and DPoP (auth v2), and the discovery service (RFC022). Handlers are module-level functions
that reach the node with `node_of(request)`."""

from __future__ import annotations

from starlette.requests import Request

from nodes.common.app import state_of
from nodes.trust.node import TrustNode


def node_of(request: Request) -> TrustNode:
    return state_of(request, TrustNode)
