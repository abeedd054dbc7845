"""The load driver of a benchmark, in its own process (pinned to its own core): it posts
prepared form bodies to one URL over a fixed number of keep-alive connections and reports
throughput and latency percentiles as JSON on standard output."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time

import httpx


async def drive(
    url: str, bodies: list[dict[str, str]], connections: int, seconds: float, context: ssl.SSLContext
) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(bodies)
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(verify=context, limits=limits, timeout=10) as client:

        async def worker() -> None:
            for body in queue:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                try:
                    status = (await client.post(url, data=body)).status_code
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
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        # Only answered requests count: a refusal is cheap and would flatter the figure.
        "per_second": round(succeeded / elapsed, 1) if elapsed else 0.0,
        "statuses": {"2xx": succeeded, "other": len(latencies) - succeeded},
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="JSON file: a list of form bodies")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with open(args.bodies, encoding="utf-8") as handle:
        bodies = json.load(handle)
    context = ssl.create_default_context(cafile=args.ca)
    result = asyncio.run(drive(args.url, bodies, args.connections, args.seconds, context))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
