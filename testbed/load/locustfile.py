"""The Locust side of a load run. This module runs only inside Locust's own processes, never
in the harness: Locust patches the standard library with gevent when it is imported.

Every simulated user replays the scenario with the same engine as a conformance run, through
an httpx transport that sends each request with the user's FastHttpUser session. A request is
counted under its step id once the engine has judged the step: it passes when the step's
expectations hold, and fails with the engine's message when they do not."""

from __future__ import annotations

import itertools
import os
import ssl
from pathlib import Path
from typing import Any

import gevent.socket
import gevent.ssl
import httpx
from locust import FastHttpUser, LoadTestShape, constant, task

from nodes.common.xmldsig import SigningIdentity
from testbed.load.perf import STEP_TYPE
from testbed.load.plan import PLAN_VARIABLE, LoadPlan
from testbed.load.shape import target
from testbed.report.model import CheckResult, Outcome
from testbed.scenario.engine import Engine
from testbed.scenario.loader import load_scenario
from testbed.topology import load_network

PLAN = LoadPlan.model_validate_json(Path(os.environ[PLAN_VARIABLE]).read_text(encoding="utf-8"))
SCENARIO = load_scenario(PLAN.scenario)
NETWORK = load_network(PLAN.network).network
SIGNER = SigningIdentity.from_files(PLAN.client_cert, PLAN.client_key) if PLAN.client_cert and PLAN.client_key else None
if PLAN.reach_at:
    # Docker runtime: node URLs name containers, which only their peers resolve; from here
    # they are reached at the ports published on loopback (TLS still checks the name).
    _resolve = gevent.socket.getaddrinfo

    def _mapped(host: str, *args: Any, **kwargs: Any) -> Any:
        return _resolve(PLAN.reach_at.get(host, host), *args, **kwargs)

    gevent.socket.getaddrinfo = _mapped

HOP_BY_HOP = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}
_local_users = itertools.count()


def _ssl_context() -> ssl.SSLContext:
    """Trust the network's CAs only, and present the harness's certificate (mutual TLS)."""
    context = gevent.ssl.create_default_context(cafile=str(PLAN.ca_bundle))
    if PLAN.client_cert and PLAN.client_key:
        context.load_cert_chain(str(PLAN.client_cert), str(PLAN.client_key))
    return context


class StepFailed(Exception):
    """A step whose expectations did not hold; counted as a failure under the step's id."""


class LocustTransport(httpx.BaseTransport):
    """httpx requests sent with a Locust FastHttpSession, held open until the step is judged."""

    def __init__(self, session: Any):
        self.session = session
        self.pending: list[Any] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        name = str(request.extensions.get("testbed_step", request.url.path))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        sent = self.session.request(
            request.method,
            str(request.url),
            name=name,
            headers=headers,
            data=request.content or None,
            catch_response=True,
        )
        sent.__enter__()  # held open: settle() reports it once the engine has judged the step
        self.pending.append(sent)
        if not sent.status_code:
            raise httpx.ConnectError(f"no answer: {sent.request_meta.get('exception')}", request=request)
        answer_headers = [(k, v) for k, v in sent.headers.items()] if sent.headers else []
        # A stream (not ready content), so that httpx reads it and times the exchange.
        body = httpx.ByteStream(sent.content or b"")
        return httpx.Response(sent.status_code, headers=answer_headers, stream=body, request=request)

    def settle(self, check: CheckResult) -> None:
        """Report the step's requests: the last one with the step's verdict, earlier ones (the
        attempts of a retried step) as failed attempts."""
        if not self.pending and check.outcome in (Outcome.FAILED, Outcome.ERROR):
            # The step failed before anything was sent (an input missing, a body unsignable).
            self.session.request_event.fire(
                request_type=STEP_TYPE,
                name=check.id,
                response_time=check.duration_ms,
                response_length=0,
                exception=StepFailed(check.message),
                context={},
            )
        for index, sent in enumerate(self.pending):
            last = index == len(self.pending) - 1
            if last and check.outcome == Outcome.PASSED:
                sent.success()
            elif check.outcome != Outcome.SKIPPED or not last:
                sent.failure(StepFailed(check.message if last else "an attempt of a retried step"))
            sent.__exit__(None, None, None)
        self.pending.clear()


class ScenarioUser(FastHttpUser):
    host = next(iter(PLAN.context["nodes"].values()))["url"]  # Locust needs one; steps use absolute URLs
    insecure = False
    ssl_context_factory = staticmethod(_ssl_context)
    wait_time = constant(PLAN.settings.think_time)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        # Distinct across workers: worker w of n takes indexes w, w + n, w + 2n, ...
        runner = self.environment.runner
        workers = max(1, PLAN.workers)
        worker = max(0, getattr(runner, "worker_index", 0))
        self.index = next(_local_users) * workers + worker
        self.iteration = 0
        self.transport = LocustTransport(self.client)
        self.http = httpx.Client(transport=self.transport, timeout=30.0)

    def on_stop(self) -> None:
        self.http.close()

    @task
    def flow(self) -> None:
        self.iteration += 1
        context = {
            **PLAN.context,
            # Unique names per user and flow, so users do not trip over each other's subjects.
            "run": {"id": f"{PLAN.run_id}-u{self.index}-i{self.iteration}"},
            "user": {"index": self.index, "iteration": self.iteration},
        }
        engine = Engine(NETWORK, context, self.http, lambda _node: [], SIGNER)
        engine.run(SCENARIO, on_check=self.transport.settle)


if PLAN.settings.stages:

    class StagesShape(LoadTestShape):
        """The scenario's stages, followed once a second."""

        def tick(self) -> tuple[int, float] | None:
            return target(PLAN.settings.stages, self.get_run_time())
