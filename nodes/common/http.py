"""HTTP plumbing every node shares: problem responses, bounded JSON bodies, outbound clients."""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import parse_qs

import httpx
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from protocols.nodeconfig import NodeConfig

MAX_BODY_BYTES = 1024 * 1024  # bodies over 1 MB are refused, as the Nuts node does
# A refusal names the rule that refused it as a problem type under this prefix (RFC 9457,
# section 3.1.1), so that a client, and a conformance check, can tell one refusal from another
# and from a generic error page.
PROBLEM_TYPE_PREFIX = "urn:health-testbed:problem:"


class HttpError(Exception):
    """Raised by a handler to answer with an RFC 9457 problem document. `code` names the rule
    that refused (e.g. "consent-denied"); without one the type is about:blank."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        headers: dict[str, str] | None = None,
        *,
        code: str | None = None,
        **extra: Any,
    ):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.code = code
        self.extra = extra

    @property
    def problem_type(self) -> str:
        return f"{PROBLEM_TYPE_PREFIX}{self.code}" if self.code else "about:blank"


def problem_response(error: HttpError) -> JSONResponse:
    body = {"type": error.problem_type, "title": error.title, "status": error.status}
    if error.detail:
        body["detail"] = error.detail
    body.update(error.extra)
    return JSONResponse(body, status_code=error.status, headers=error.headers, media_type="application/problem+json")


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HttpError(413, "Payload Too Large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HttpError(413, "Payload Too Large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    return body


async def read_json(request: Request) -> Any:
    body = await read_body(request)
    if not body:
        raise HttpError(400, "Bad Request", "a JSON request body is required")
    return parse_json(body, what="the request body")


def parse_json(text: str | bytes, *, what: str) -> Any:
    """JSON a caller sent (a body, a form field, a token's payload); anything a parser refuses
    is the caller's fault, and answered 400, never 500: bad syntax or encoding, nesting deeper
    than the parser's recursion allows, an integer of more digits than Python converts."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HttpError(400, "Bad Request", f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise HttpError(400, "Bad Request", f"{what} nests too deeply") from None
    except ValueError as exc:  # e.g. an integer beyond the conversion limit (CVE-2020-10735)
        raise HttpError(400, "Bad Request", f"{what} holds a value out of range: {exc}") from None


async def read_json_object(request: Request) -> dict[str, Any]:
    value = await read_json(request)
    if not isinstance(value, dict):
        raise HttpError(400, "Bad Request", "the request body must be a JSON object")
    return value


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body; a repeated field is an error."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise HttpError(400, "Bad Request", "expected an application/x-www-form-urlencoded body")
    body = await read_body(request)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise HttpError(400, "Bad Request", "the form body is not UTF-8") from None
    repeated = [name for name, values in fields.items() if len(values) > 1]
    if repeated:
        raise HttpError(400, "Bad Request", f"form field(s) given more than once: {', '.join(repeated)}")
    return {name: values[0] for name, values in fields.items()}


def validation_detail(exc: ValidationError) -> str:
    """A pydantic error as one line a client can act on: where, and what is wrong."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])


def require_fields(body: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if body.get(n) in (None, "")]
    if missing:
        raise HttpError(400, "Bad Request", f"missing required field(s): {', '.join(missing)}")


async def call_json(
    client: httpx.AsyncClient, method: str, url: str, *, what: str, failure_status: int = 502, **kwargs: Any
) -> dict[str, Any]:
    """Call another node for a JSON object; anything else fails with `failure_status` (502 for
    a peer that answered wrongly; a node whose own dependency is down may say 503) and a
    message saying what and where."""
    title = {502: "Bad Gateway", 503: "Service Unavailable"}.get(failure_status, "Error")

    def failure(detail: str) -> HttpError:
        return HttpError(failure_status, title, f"{what} at {url} {detail}")

    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise failure(f"unreachable: {exc.__class__.__name__}") from None
    if response.status_code != 200:
        raise failure(f"answered {response.status_code}: {response.text[:300]}")
    try:
        value = response.json()
    except ValueError:
        raise failure("is not JSON") from None
    if not isinstance(value, dict):
        raise failure("is not a JSON object")
    return value


def client_ssl_context(config: NodeConfig) -> ssl.SSLContext:
    """Trust the network CA only, and present this node's certificate for mutual TLS."""
    context = ssl.create_default_context(cafile=str(config.tls.ca))
    context.load_cert_chain(str(config.tls.cert), str(config.tls.key))
    return context


def outbound_client(
    config: NodeConfig, timeout: float = 10.0, *, context: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    """The client a node calls its peers with. Given an egress proxy, every HTTPS connection
    is a CONNECT tunnel through it (so the harness can cut or slow the link); TLS stays end
    to end. Plain HTTP (an internal API of an implementation under test) goes direct."""
    context = context or client_ssl_context(config)
    if config.egress_proxy is None:
        return httpx.AsyncClient(verify=context, timeout=timeout)
    tunnelled = httpx.AsyncHTTPTransport(verify=context, proxy=config.egress_proxy)
    return httpx.AsyncClient(verify=context, timeout=timeout, mounts={"https://": tunnelled})


def outbound_transport(config: NodeConfig, *, context: ssl.SSLContext | None = None) -> httpx.AsyncHTTPTransport:
    """A bare transport to peers' HTTPS URLs, below the client layer, through the egress proxy
    as `outbound_client`'s connections go (a link fault holds for it too)."""
    return httpx.AsyncHTTPTransport(verify=context or client_ssl_context(config), proxy=config.egress_proxy)
