"""Raw Locust: one FastHttpUser reading the raw endpoint, nothing else. The load-driver bench
compares the harness's driver with it (run only inside Locust's processes)."""

from __future__ import annotations

import os

import gevent.ssl
from locust import FastHttpUser, constant, task


def _ssl_context() -> gevent.ssl.SSLContext:
    return gevent.ssl.create_default_context(cafile=os.environ["TESTBED_BENCH_CA"])


class RawUser(FastHttpUser):
    host = os.environ.get("TESTBED_BENCH_URL", "https://127.0.0.1")
    insecure = False
    ssl_context_factory = staticmethod(_ssl_context)
    wait_time = constant(0)

    @task
    def ping(self) -> None:
        self.client.get("/", name="ping")
