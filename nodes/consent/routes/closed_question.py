"""Mitz's closed question ("gesloten vraag"): SOAP 1.2 + XACML 3.0 over mutual TLS, the query
signed by the connection's own TLS client."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_body
from nodes.common.peer import client_certificate
from nodes.consent import xacml
from nodes.consent.routes import service_of

SOAP_XML = "application/soap+xml"


async def closed_question(request: Request) -> Response:
    """A malformed query, or one not signed by this connection's TLS client, is a SOAP fault,
    never a Permit."""
    service = service_of(request)
    relates_to = ""
    try:
        verified = service.verified(client_certificate(request))
        query = xacml.parse_query(await read_body(request), verified, faulty=service.faulty)
        relates_to = query.message_id
        if not service.bsn_ok(query.bsn):
            raise xacml.SoapFault("Sender", f"{query.bsn!r} is not a valid BSN (eleven-test)", "bsn-invalid")
        decision = service.closed_answer(query)
    except xacml.SoapFault as error:
        if error.subcode == "bsn-missing" and service.faulty("missing-bsn-answered"):
            return Response(xacml.response("Deny", relates_to), media_type=SOAP_XML)
        return Response(xacml.fault(error, relates_to), status_code=error.http_status, media_type=SOAP_XML)
    except HttpError as error:  # e.g. a body over the size limit
        fault = xacml.SoapFault("Sender", error.detail or error.title, "query-too-large")
        return Response(xacml.fault(fault), status_code=fault.http_status, media_type=SOAP_XML)
    echo = "" if service.faulty("echo-dropped") else query.echo
    return Response(xacml.response(decision, relates_to, echo), media_type=SOAP_XML)


PUBLIC_ROUTES = [Route("/geslotenautorisatievraag/xacml3", closed_question, methods=["POST"])]
