"""The opt-out register for secondary use (EHDS, article 71): citizens opt out and back in on
the internal API; data stations ask about the citizens in a cohort on the public API."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object
from nodes.consent.routes import service_of
from nodes.consent.service import OPT_OUTS


async def opt_out(request: Request) -> Response:
    service = service_of(request)
    bsn = service.bsn_of(await read_json_object(request))
    if not service.faulty("opt-out-not-recorded"):
        service.store.put(OPT_OUTS, bsn, {"bsn": bsn, "registered": time.time()})
    return JSONResponse({"bsn": bsn, "opted_out": True}, status_code=201)


async def opt_back_in(request: Request) -> Response:
    service = service_of(request)
    bsn = service.valid(request.path_params["bsn"])
    if service.store.get(OPT_OUTS, bsn) is None:
        raise HttpError(404, "Not Found", "this citizen has not opted out", code="not-opted-out")
    if not service.faulty("opt-back-in-not-applied"):
        service.store.delete(OPT_OUTS, bsn)
    return JSONResponse({"bsn": bsn, "opted_out": False})


async def opt_out_check(request: Request) -> Response:
    """For data stations: which of these citizens opted out of secondary use. It answers about
    the citizens asked about and no one else."""
    service = service_of(request)
    body = await read_json_object(request)
    bsns = body.get("bsns")
    if not isinstance(bsns, list) or not all(isinstance(b, str) for b in bsns):
        raise HttpError(422, "Unprocessable Entity", "'bsns' must be a list of BSN strings", code="bsns-invalid")
    if service.faulty("opt-out-check-always-empty"):
        return JSONResponse({"opted_out": []})
    if service.faulty("opt-out-check-lists-others"):
        return JSONResponse({"opted_out": [entry["bsn"] for entry in service.store.iterate(OPT_OUTS)]})
    return JSONResponse({"opted_out": [b for b in bsns if service.store.get(OPT_OUTS, b) is not None]})


PUBLIC_ROUTES = [Route("/consent/v1/optouts/check", opt_out_check, methods=["POST"])]
INTERNAL_ROUTES = [
    Route("/internal/consent/v1/optouts", opt_out, methods=["POST"]),
    Route("/internal/consent/v1/optouts/{bsn}", opt_back_in, methods=["DELETE"]),
]
