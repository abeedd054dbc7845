"""The yardstick: the smallest HTTPS endpoint the same server stack can offer (uvicorn and
Starlette, same TLS certificate), reading a form body and answering a small JSON object."""

from __future__ import annotations

import argparse
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def token(request: Request) -> Response:
    form = parse_qs((await request.body()).decode())  # parsed as the trust node parses it
    return JSONResponse({"access_token": "raw", "token_type": "Bearer", "scope": form.get("scope", [""])[0]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    app = Starlette(routes=[Route("/token", token, methods=["POST"])])
    uvicorn.run(app, host=args.host, port=args.port, ssl_certfile=args.cert, ssl_keyfile=args.key, log_level="warning")


if __name__ == "__main__":
    main()
