"""The fallback load driver of a benchmark, in its own process (pinned to its own core): it
posts prepared form bodies (`--bodies`), or one body again and again (`--body`), to one URL
over a fixed number of keep-alive connections, and reports throughput and latency
percentiles as JSON on standard output. With `--cert` and `--key` it presents a client
certificate (mutual TLS)."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import ssl
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

NAME = "python (httpx)"

Post = dict[str, Any]  # keyword arguments of one `client.post`


async def drive(
    url: str, posts: Iterable[Post], connections: int, *, seconds: float, context: ssl.SSLContext
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    received = 0  # body bytes of the answers, to tell answers apart by their length
    queue = iter(posts)
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(verify=context, limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal received
            for post in queue:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                try:
                    response = await client.post(url, **post)
                    status = response.status_code
                    received += len(response.content)
                except httpx.HTTPError:
                    status = 0  # counted apart: the connection failed
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    succeeded = sum(count for status, count in statuses.items() if 200 <= status < 300)

    def percentile(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else 0.0

    return {
        "driver": NAME,
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        # Only answered requests count: a refusal is cheap and would flatter the figure.
        "per_second": round(succeeded / elapsed, 1) if elapsed else 0.0,
        "statuses": {"2xx": succeeded, "other": len(latencies) - succeeded},
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "bytes": received,
    }


def _posts(args: argparse.Namespace) -> Iterator[Post]:
    if args.bodies:
        with open(args.bodies, encoding="utf-8") as handle:
            return iter([{"data": body} for body in json.load(handle)])
    post = {"content": Path(args.body).read_bytes(), "headers": {"Content-Type": args.content_type}}
    return itertools.repeat(post)  # the same query each time: the deadline ends the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    bodies = parser.add_mutually_exclusive_group(required=True)
    bodies.add_argument("--bodies", help="JSON file: a list of form bodies, each sent once")
    bodies.add_argument("--body", help="a file whose content every request sends")
    parser.add_argument("--content-type", default="application/octet-stream", help="of --body")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", help="client certificate (PEM), for mutual TLS")
    parser.add_argument("--key", help="its private key (PEM)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    result = asyncio.run(drive(args.url, _posts(args), args.connections, seconds=args.seconds, context=context))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
