"""Many calls to many nodes at once: a network of a thousand organisations is started, asked
for its identity and bootstrapped over thousands of HTTPS calls, which wait on the network far
more than they compute, so threads (one shared, thread-safe httpx client) overlap them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS = 16  # enough to keep two cores busy with TLS handshakes; a node sees a few at a time


def each(function: Callable[[T], R], items: Iterable[T], *, workers: int = WORKERS) -> list[R]:
    """`function` applied to every item, concurrently, results in the items' order; the first
    exception (in that order) is raised once all calls are done."""
    items = list(items)
    if len(items) <= 1 or workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="testbed") as pool:
        futures = [pool.submit(function, item) for item in items]
    return [future.result() for future in futures]
