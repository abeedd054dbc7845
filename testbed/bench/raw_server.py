"""The yardstick: the smallest HTTPS endpoint the same server stack can offer (uvicorn on
uvloop and httptools, and Starlette, as the nodes run; a certificate from the same CA).
`/token` reads a form body and answers a small JSON object; `/soap` reads a body and answers
a small fixed SOAP envelope. With `--client-ca` it asks for a client certificate from that CA
(mutual TLS), as a consent node's public listener does."""

from __future__ import annotations

import argparse
import ssl
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SOAP_ANSWER = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/></soap:Envelope>'
)


async def token(request: Request) -> Response:
    form = parse_qs((await request.body()).decode())  # parsed as the trust node parses it
    return JSONResponse({"access_token": "raw", "token_type": "Bearer", "scope": form.get("scope", [""])[0]})


async def soap(request: Request) -> Response:
    await request.body()  # received in full, as the consent node receives a query, but not parsed
    return Response(SOAP_ANSWER, media_type="application/soap+xml")


async def ping(_: Request) -> Response:
    return JSONResponse({"ok": True})  # what a load driver's simplest step reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca", help="ask for a client certificate from this CA bundle")
    args = parser.parse_args()
    app = Starlette(
        routes=[Route("/", ping), Route("/token", token, methods=["POST"]), Route("/soap", soap, methods=["POST"])]
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
        ssl_ca_certs=args.client_ca,
        ssl_cert_reqs=ssl.CERT_REQUIRED if args.client_ca else ssl.CERT_NONE,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
