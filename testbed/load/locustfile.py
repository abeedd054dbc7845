"""The Locust side of a load run. This module runs only inside Locust's own processes, never
in the harness: Locust patches the standard library with gevent when it is imported.

Every simulated user replays the scenario with the same engine as a conformance run, through
a transport that sends each request with the user's FastHttpUser session. A request is
counted under its step id once the engine has judged the step: it passes when the step's
expectations hold, and fails with the engine's message when they do not."""

from __future__ import annotations

import atexit
import gc
import itertools
import os
import random
import ssl
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.socket
import gevent.ssl
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

from protocols.xmldsig import SigningIdentity
from testbed.load.perf import STEP_TYPE
from testbed.load.plan import PLAN_VARIABLE, STARTED_FILE, LoadPlan
from testbed.load.records import OK, OTHER, RecordWriter, failure_kind
from testbed.load.shape import target
from testbed.report.model import Outcome
from testbed.scenario.engine import Engine, Verdict
from testbed.scenario.loader import load_scenario
from testbed.scenario.spread import Spread
from testbed.scenario.transport import LowerCaseHeaders, Outgoing, Reply, TransportError
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

# Who plays the spread actors is drawn for every flow (testbed.scenario.spread); None: the
# organisations the scenario names play them in every flow.
SPREAD = Spread(SCENARIO.scenario, NETWORK, PLAN.settings.spread) if PLAN.settings.spread else None
_local_users = itertools.count()
# Each step allocates a few dozen short-lived objects that reference counting frees. With the
# collector's default thresholds they would set off a sweep of young objects every few
# steps and of the whole heap (Locust, gevent, the scenario's models) every few hundred:
# a load driver's cycles spent on bookkeeping. What exists now lives as long as the process
# (frozen: never swept), and young objects are swept less often.
gc.freeze()
gc.set_threshold(20_000, 50, 100)
# A run with a fault schedule records every request, to tell those inside a fault window apart.
RECORDS = RecordWriter(PLAN.record_to) if PLAN.record_to and PLAN.record_requests else None


@events.test_start.add_listener  # type: ignore[untyped-decorator]  # locust's events are untyped
def _mark_start(environment: Environment, **_: Any) -> None:
    """The moment the load begins, for the harness: its fault schedule and its series count
    from here. The master (or the only process) says it; workers start when it tells them."""
    if isinstance(environment.runner, WorkerRunner):
        return
    if PLAN.record_to is not None:
        PLAN.record_to.mkdir(parents=True, exist_ok=True)
        written = PLAN.record_to / f".{STARTED_FILE}"
        written.write_text(f"{time.time():.3f}", encoding="utf-8")
        os.replace(written, PLAN.record_to / STARTED_FILE)  # whole or not at all, for the harness's reader
    if PLAN.stop_after is not None and environment.runner is not None:
        gevent.spawn_later(PLAN.stop_after, environment.runner.quit)  # as --run-time would, from the start


def _flush_records(**_: Any) -> None:
    if RECORDS is not None:
        RECORDS.flush()


events.test_stop.add_listener(_flush_records)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_flush_records)  # type: ignore[no-untyped-call]
atexit.register(_flush_records)  # a request answered between `quitting` and the end is kept too


def _ssl_context() -> ssl.SSLContext:
    """Trust the network's CAs only, and present the harness's certificate (mutual TLS)."""
    context: ssl.SSLContext = gevent.ssl.create_default_context(cafile=str(PLAN.ca_bundle))
    if PLAN.client_cert and PLAN.client_key:
        context.load_cert_chain(str(PLAN.client_cert), str(PLAN.client_key))
    return context


class StepFailed(Exception):
    """A step whose expectations did not hold; counted as a failure under the step's id."""


class LocustTransport:
    """The engine's requests sent with a Locust FastHttpSession, held open until the step is judged."""

    def __init__(self, session: Any):
        self.session = session
        self.pending: list[Any] = []

    def send(self, outgoing: Outgoing) -> Reply:
        if outgoing.anonymous:  # a user's session always presents the harness's certificate
            raise TransportError("a load run cannot send without a client certificate (client_certificate: none)")
        sent = self.session.request(
            outgoing.method,
            outgoing.url,
            name=outgoing.step,
            headers=outgoing.headers,
            data=outgoing.body,
            catch_response=True,
        )
        sent.__enter__()  # held open: settle() reports it once the engine has judged the step
        self.pending.append(sent)
        if not sent.status_code:
            error = sent.request_meta.get("exception")
            raise TransportError(f"no answer: {error}", timed_out=isinstance(error, TimeoutError | gevent.Timeout))
        headers = LowerCaseHeaders(sent.headers or {})
        return Reply(sent.status_code, headers, sent.content or b"", sent.request_meta["response_time"])

    def settle(self, step: str, verdict: Verdict) -> None:
        """Report the step's requests: the last one with the step's verdict, earlier ones (the
        attempts of a retried step) as failed attempts."""
        outcome = verdict.outcome
        if not self.pending and outcome in (Outcome.FAILED, Outcome.ERROR):
            # The step failed before anything was sent (an input missing, a body unsignable).
            self.session.request_event.fire(
                request_type=STEP_TYPE,
                name=step,
                response_time=verdict.duration_ms,
                response_length=0,
                exception=StepFailed(verdict.message),
                context={},
            )
            if RECORDS is not None:
                RECORDS.write(verdict.started.timestamp(), verdict.duration_ms, OTHER, step)
        last = len(self.pending) - 1
        for index, sent in enumerate(self.pending):
            if index == last and outcome == Outcome.PASSED:
                sent.success()
            elif outcome != Outcome.SKIPPED or index != last:
                sent.failure(StepFailed(verdict.message if index == last else "an attempt of a retried step"))
            sent.__exit__(None, None, None)
            if RECORDS is not None and not (index == last and outcome == Outcome.SKIPPED):
                _record(RECORDS, step, sent, passed=index == last and outcome == Outcome.PASSED, final=index == last)
        self.pending.clear()


def _record(records: RecordWriter, step: str, sent: Any, *, passed: bool, final: bool) -> None:
    """One request's record: a retried step's earlier attempts are neither refusals nor wrong
    answers (they ask again for what is on its way), the last one is judged by its answer."""
    if passed:
        kind = OK
    elif not final:
        kind = OTHER
    elif not sent.status_code:  # no answer: refused, reset or timed out
        kind = failure_kind(0, "", b"")
    else:
        content_type = LowerCaseHeaders(sent.headers or {}).get("content-type", "")
        kind = failure_kind(sent.status_code, content_type, sent.content or b"")
    meta = sent.request_meta
    records.write(meta["start_time"], meta.get("response_time") or 0.0, kind, step)


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
        self.draws = random.Random(f"{PLAN.run_id}-{self.index}")  # each user its own, repeatable sequence
        self.transport = LocustTransport(self.client)
        # Figures, not evidence, are what a load run reports: the engine keeps its verdicts only.
        self.engine = Engine(NETWORK, PLAN.context, self.transport, lambda _node: [], SIGNER, keep_evidence=False)

    @task
    def flow(self) -> None:
        self.iteration += 1
        extra = {
            # Unique names per user and flow, so users do not trip over each other's subjects.
            "run": {"id": f"{PLAN.run_id}-u{self.index}-i{self.iteration}"},
            "user": {"index": self.index, "iteration": self.iteration},
        }
        settle = self.transport.settle
        actors = SPREAD.draw(self.draws) if SPREAD is not None else None
        for step, verdict in self.engine.replay(SCENARIO, extra, actors=actors):
            settle(step.id, verdict)


if PLAN.settings.stages:

    class StagesShape(LoadTestShape):
        """The scenario's stages, followed once a second."""

        def tick(self) -> tuple[int, float] | None:
            return target(PLAN.settings.stages, self.get_run_time())  # type: ignore[no-untyped-call]
