"""What the citizen's decisions mean for an app: whether a request opens the pod now, and when
it does not, which rule refuses (each refusal names its rule, so an app, and a conformance
check, can tell "not yet decided" from "denied", "revoked" and "expired")."""

from __future__ import annotations

from typing import Any

from nodes.common.http import HttpError

# The state of the app's newest request for the pod -> (rule, what the app is told).
REFUSALS: dict[str | None, tuple[str, str]] = {
    None: ("access-not-granted", "the citizen has not granted this app access to this pod"),
    "requested": ("access-not-granted", "the citizen has not decided on this app's access request yet"),
    "denied": ("access-denied", "the citizen denied this app's access request"),
    "revoked": ("access-revoked", "the citizen revoked this app's access grant"),
    "approved": ("access-expired", "this app's access grant has expired"),
}


def in_force(asked: dict[str, Any], now: float) -> bool:
    """An approved request whose grant has not expired."""
    return asked["status"] == "approved" and asked["grant"]["expires"] > now


def refusal(newest: dict[str, Any] | None) -> HttpError:
    """The refusal for an app whose requests for a pod open nothing; `newest` is its most
    recent request there (None: it never asked)."""
    code, detail = REFUSALS[None if newest is None else newest["status"]]
    return HttpError(403, "Forbidden", detail, code=code)


def newest(requests: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(requests, key=lambda r: r["asked"], default=None)


def container_named(value: Any, container: str, container_url: str) -> bool:
    """An access request names the container by its name or by its URL (an absent one means the
    lifestyle container, the only one this vault shares)."""
    return value in (None, container, container_url, container_url.rstrip("/"))
