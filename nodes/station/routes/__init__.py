"""The data station's HTTP routes, one module per resource: the BgZ FHIR API (primary use),
the eOverdracht handover, analysis tasks (secondary use), and the station's own records (test
patients, audit log, consent notifications). Handlers are module-level functions that reach the
station with `station_of(request)`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nodes.common.app import state_of
from nodes.station.station import FHIR_JSON, Station


def station_of(request: Request) -> Station:
    return state_of(request, Station)


def fhir_response(resource: Any, status_code: int = 200) -> Response:
    return JSONResponse(resource, status_code=status_code, media_type=FHIR_JSON)
