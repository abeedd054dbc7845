"""Replay a scenario against a running network: one check per step.

For each step: fill placeholders, make the call (or run the action), compare the answer
with the expectations, capture values for later steps, and keep the evidence."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from protocols.xmldsig import SigningIdentity, sign_soap_query
from testbed.errors import TestbedError
from testbed.report.model import (
    CheckResult,
    Evidence,
    ExpectationResult,
    HttpRequestRecord,
    HttpResponseRecord,
    Outcome,
    ScenarioResult,
)
from testbed.scenario.expectations import NO_JSON, evaluate, jwt_claims, split_source
from testbed.scenario.loader import LoadedScenario, resolve_fault, resolve_node
from testbed.scenario.models import Action, Expect, Fault, Request, Step
from testbed.scenario.templating import UndefinedVariable, lookup, render, roots
from testbed.scenario.transport import Outgoing, Reply, Transport, TransportError
from testbed.topology import Network

BODY_LIMIT = 64 * 1024  # evidence keeps at most this much of a body
SECRET_HEADERS = ("authorization", "dpop")
# Access tokens in bodies: `"access_token": "..."` in JSON, `token=...` in forms.
SECRET_IN_BODY = re.compile(r'("(?:access_token|refresh_token)"\s*:\s*"|(?:^|&)token=)([^"&]{8})[^"&]*')


# Does a fault step's fault (its node, or its link's ends, already node names) and says what was done and when;
# raises an exception when it cannot. The conformance runner hands the engine one that knows the
# runtime; the engine itself never does.
FaultApplier = Callable[[Fault], str]


class StepError(Exception):
    """The step could not be carried out; `outcome` says whose fault that is."""

    def __init__(self, outcome: Outcome, message: str):
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class _Reading:
    """What replaying a step involves, worked out once per step (a load run replays each
    step for every simulated user): the node it talks to, whether its expectations have
    placeholders, and which forms of the answer's body judging it looks at."""

    node: str | None  # None: an action that talks to no node (wait)
    templated: bool  # its expectations have placeholders
    timed: bool  # it uses `time.*` placeholders
    json: bool  # the body as JSON: JSON paths in expectations or captures
    text: bool  # the body as text: a regular expression over it, or a JWT it is


@dataclass(slots=True)
class Verdict:
    """How one step went, as the engine judged it; `Engine.run` makes a check of the results
    model of it, a load run counts it."""

    outcome: Outcome
    message: str
    blocked_by: str | None  # skipped because this earlier step did not capture what it needs
    started: datetime
    duration_ms: float
    evidence: Evidence | None  # None: the engine keeps no evidence (a load run)


@dataclass(frozen=True)
class StepChoice:
    """Which steps of a scenario a replay runs when a run selects checks (`-k`,
    `--last-failed`): the chosen checks, and the earlier steps run only as their setup.
    Every other step is left out."""

    checks: frozenset[str]
    setup: frozenset[str]

    def runs(self, step_id: str) -> bool:
        return step_id in self.checks or step_id in self.setup


class Engine:
    def __init__(
        self,
        network: Network,
        context: dict[str, Any],
        transport: Transport,
        log_tail: Callable[[str], list[str]],
        signer: SigningIdentity | None = None,
        keep_evidence: bool = True,
        *,
        faults: FaultApplier | None = None,
    ):
        """`signer`: what `sign: xmldsig` signs with, the key and certificate the harness
        presents in mutual TLS (a node may insist that the two are the same).
        `keep_evidence`: record each step's request and answer (a conformance run's report
        shows them); a load run, which reports figures, keeps only the verdicts.
        `faults`: what carries out fault steps (None: a fault step is an error)."""
        self.network = network
        self.context = context
        self.transport = transport
        self.log_tail = log_tail
        self.signer = signer
        self.keep_evidence = keep_evidence
        self.faults = faults
        # By id() of the step (steps live as long as their scenario) and the organisation its
        # node belongs to (a load spread over the network draws actors anew for every flow).
        self._readings: dict[tuple[int, str | None], _Reading] = {}

    def run(
        self,
        loaded: LoadedScenario,
        on_check: Callable[[CheckResult], None] = lambda _: None,
        *,
        choice: StepChoice | None = None,
        on_setup: Callable[[Step, Verdict], None] = lambda _s, _v: None,
        stop_after: Callable[[CheckResult], bool] = lambda _: False,
    ) -> ScenarioResult:
        """The scenario replayed into the results model, one check per step. `choice`: only
        these steps (None: all); its setup steps go to `on_setup`, never into the results.
        `stop_after`: true for a check after which the replay ends (`-x`)."""
        scenario = loaded.scenario
        result = ScenarioResult(
            name=scenario.name, file=loaded.display_path, sha256=loaded.sha256, description=scenario.description
        )
        for step, verdict in self.replay(loaded, only=choice.runs if choice else None):
            if choice is not None and step.id in choice.setup:
                on_setup(step, verdict)
                continue
            check = CheckResult(
                id=step.id,
                title=step.title,
                requirements=step.requirements,
                readings=dict(step.readings),
                outcome=verdict.outcome,
                message=verdict.message,
                blocked_by=verdict.blocked_by,
                started=verdict.started,
                duration_ms=verdict.duration_ms,
                evidence=verdict.evidence or Evidence(),
            )
            result.checks.append(check)
            on_check(check)
            if stop_after(check):
                break  # the generator is left unfinished: no later step runs
        return result

    def replay(
        self,
        loaded: LoadedScenario,
        extra: dict[str, Any] | None = None,
        only: Callable[[str], bool] | None = None,
        *,
        actors: dict[str, str] | None = None,
    ) -> Iterator[tuple[Step, Verdict]]:
        """Each step in turn with its verdict. `extra`: values of this replay alone, over the
        engine's context (a load run's simulated user and iteration, its `run.id`).
        `only`: true for the ids of the steps to run (None: every step). `actors`: who plays
        each actor in this replay (None: the organisations the scenario names)."""
        scenario = loaded.scenario
        cast = actors or scenario.actors
        context = {**self.context, **extra} if extra else self.context
        variables: dict[str, Any] = {
            **context,
            "vars": scenario.variables,
            "actors": {actor: context["orgs"][org] for actor, org in cast.items()},
        }
        failed_captures: dict[str, str] = {}  # variable -> step that should have captured it
        for step in scenario.steps:
            if only is not None and not only(step.id):
                continue
            verdict = self._run_step(step, cast, variables, failed_captures)
            if verdict.outcome != Outcome.PASSED:
                failed_captures.update(dict.fromkeys(step.capture, step.id))
            yield step, verdict

    def _run_step(
        self, step: Step, actors: dict[str, str], variables: dict[str, Any], failed: dict[str, str]
    ) -> Verdict:
        if step.fault is not None:
            return self._fault_step(step.fault, actors)
        started = datetime.now(UTC)
        clock = time.perf_counter()
        evidence = Evidence() if self.keep_evidence else None
        blocked_by: str | None = None
        try:
            reading = self._reading(step, actors)
            if reading.timed:
                variables["time"] = time_variables(started)
            # Before sending, so that a missing input stops the step here; most have no placeholders.
            expect = _rendered(step.expect, variables) if reading.templated else step.expect
            attempts = step.retry.attempts if step.retry else 1
            for attempt in range(attempts):
                if attempt:
                    time.sleep(step.retry.interval if step.retry else 0)
                reply = self._exchange(step, reading, variables, evidence)
                outcome, message = self._judge(step, reading, expect, reply, variables, evidence)
                if outcome == Outcome.PASSED:
                    break
            if attempts > 1 and outcome != Outcome.PASSED:
                message = f"after {attempts} attempts: {message}"
        except UndefinedVariable as exc:
            if exc.root in failed:
                blocked_by = failed[exc.root]
                outcome, message = (
                    Outcome.SKIPPED,
                    f"not run: needs '{exc.root}', which step '{failed[exc.root]}' did not capture",
                )
            else:
                outcome, message = Outcome.ERROR, f"undefined placeholder {exc}"
        except StepError as exc:
            outcome, message = exc.outcome, str(exc)
        except Exception as exc:  # a harness fault ends this check, never the run
            outcome, message = (
                Outcome.ERROR,
                f"the harness could not carry out this step: {exc.__class__.__name__}: {exc}",
            )
        if outcome in (Outcome.FAILED, Outcome.ERROR) and evidence is not None and evidence.node:
            evidence.node_log_tail = self.log_tail(evidence.node)
        duration_ms = round((time.perf_counter() - clock) * 1000, 2)
        return Verdict(outcome, message, blocked_by, started, duration_ms, evidence)

    def _fault_step(self, fault: Fault, actors: dict[str, str]) -> Verdict:
        """A fault step passes once its fault is done, with a message saying what and when;
        one the harness cannot do is an error of the harness or the environment, never a
        failure of an implementation."""
        started = datetime.now(UTC)
        clock = time.perf_counter()
        evidence = Evidence() if self.keep_evidence else None
        outcome = Outcome.PASSED
        try:
            if self.faults is None:
                raise StepError(Outcome.ERROR, "this replay cannot do faults (only a conformance run does)")
            fault = resolve_fault(fault, actors, self.network)  # its node, or its link's ends, by name
            if evidence is not None:
                evidence.node = fault.node
            message = self.faults(fault)
        except StepError as exc:
            outcome, message = exc.outcome, str(exc)
        except TestbedError as exc:  # the runtime could not do it: this check errs, the run goes on
            outcome, message = Outcome.ERROR, f"the fault could not be done: {exc}"
        except Exception as exc:
            outcome, message = Outcome.ERROR, f"the fault could not be done: {exc.__class__.__name__}: {exc}"
        if outcome != Outcome.PASSED and evidence is not None and evidence.node:
            evidence.node_log_tail = self.log_tail(evidence.node)
        duration_ms = round((time.perf_counter() - clock) * 1000, 2)
        return Verdict(outcome, message, None, started, duration_ms, evidence)

    def _reading(self, step: Step, actors: dict[str, str]) -> _Reading:
        reference = step.node_reference
        key = (id(step), actors.get(reference.partition(".")[0]) if reference else None)
        found = self._readings.get(key)
        if found is None:
            found = self._readings[key] = _reading_of(step, actors, self.network)
        return found

    def _exchange(
        self, step: Step, reading: _Reading, variables: dict[str, Any], evidence: Evidence | None
    ) -> Reply | None:
        """The node's answer to the step's request; None for an action that sends nothing."""
        if reading.node is None:
            assert step.action is not None
            time.sleep(step.action.seconds or 0)
            return None
        request = self._token_request(step.action, variables) if step.action is not None else step.request
        assert request is not None
        if evidence is not None:
            evidence.node = reading.node
        return self._send(request, reading.node, variables, evidence, step.id)

    def _token_request(self, action: Action, variables: dict[str, Any]) -> Request:
        """`request-access-token` is a shorthand for the call a person would otherwise spell
        out: the requester's trust node asks the holder's authorization server."""
        requester = variables["actors"][action.requester]
        holder = variables["actors"][action.holder]
        return Request(
            node=action.token_node,
            api="internal",
            method="POST",
            path=f"/internal/auth/v2/{requester['subject']}/request-service-access-token",
            json_body={
                "authorization_server": holder["authorization_server"],
                "scope": action.scope,
                "token_type": action.token_type,
            },
            headers={"Cache-Control": "no-cache"} if action.fresh else {},
        )

    def _send(
        self, request: Request, node: str, variables: dict[str, Any], evidence: Evidence | None, step_id: str
    ) -> Reply:
        outgoing = self._outgoing(request, node, variables, step_id)
        if evidence is not None:
            evidence.request = HttpRequestRecord(
                method=outgoing.method,
                url=outgoing.url,
                headers=_redacted(outgoing.headers),
                body=_text(outgoing.body) if outgoing.body else None,
            )
        try:
            reply = self.transport.send(outgoing)
        except TransportError as exc:
            what = f"{outgoing.method} {outgoing.url}"
            if exc.timed_out:
                raise StepError(Outcome.ERROR, f"{node} did not answer {what} in time") from None
            raise StepError(Outcome.ERROR, f"{node} unreachable at {outgoing.url}: {exc}") from exc
        if evidence is not None:
            evidence.response = HttpResponseRecord(
                status=reply.status,
                headers=_redacted(reply.headers),
                body=_text(reply.content),
                elapsed_ms=reply.elapsed_ms,
            )
        return reply

    def _outgoing(self, request: Request, node: str, variables: dict[str, Any], step_id: str) -> Outgoing:
        """The request as it goes out: URL with its query string, headers, and the body
        encoded (JSON, a form, or raw text, signed when the step says so)."""
        url = self.context["nodes"][node]["url" if request.api == "public" else "internal_url"]
        url += str(render(request.path, variables))
        if request.query:
            url += ("&" if "?" in url else "?") + urlencode(render(request.query, variables))
        headers = {k: str(v) for k, v in render(request.headers, variables).items()} if request.headers else {}
        body: bytes | None = None
        content_type = ""
        if request.json_body is not None:
            value = render(request.json_body, variables)
            body = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
            content_type = "application/json"
        elif request.form is not None:
            body = urlencode(render(request.form, variables)).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        elif request.body is not None:
            body = self._body(request, variables).encode("utf-8")
        if content_type and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = content_type
        return Outgoing(request.method, url, headers, body, step_id, request.client_certificate == "none")

    def _body(self, request: Request, variables: dict[str, Any]) -> str:
        """The raw body, rendered, then signed and changed afterwards when the step says so."""
        body = str(render(request.body, variables))
        if request.sign is None:
            return body
        if self.signer is None:
            raise StepError(Outcome.ERROR, "this step signs its body, but the harness has no certificate to sign with")
        try:
            signed = sign_soap_query(body.encode("utf-8"), self.signer).decode("utf-8")
        except ValueError as exc:
            raise StepError(Outcome.ERROR, f"the body cannot be signed: {exc}") from exc
        return _tampered(signed, render(request.tamper, variables))

    def _judge(
        self,
        step: Step,
        reading: _Reading,
        expect: Expect,
        reply: Reply | None,
        variables: dict[str, Any],
        evidence: Evidence | None,
    ) -> tuple[Outcome, str]:
        if reply is not None and reply.tls_alert is not None and expect.tls is None:
            raise StepError(Outcome.ERROR, f"{reading.node} ended the TLS connection ({reply.tls_alert})")
        headers: Mapping[str, str] = {}
        if reply is None:
            status, body, text = 0, NO_JSON, ""
        else:
            status, headers = reply.status, reply.headers
            text = reply.text if reading.text else ""
            body = _json_or_marker(reply.content) if reading.json else NO_JSON
        alert = reply.tls_alert if reply is not None else None
        judged = evaluate(
            expect, status, headers, body=body, text=text, passed_too=evidence is not None, tls_alert=alert
        )
        failures = [e for e in judged if not e.passed]
        if not failures and step.capture:
            judged += (failures := self._capture(step, status, headers, body, text, variables))
        if evidence is not None:
            evidence.expectations = judged
        if failures:
            return Outcome.FAILED, "; ".join(_describe(e) for e in failures)
        return Outcome.PASSED, ""

    def _capture(
        self, step: Step, status: int, headers: Mapping[str, str], body: Any, text: str, variables: dict[str, Any]
    ) -> list[ExpectationResult]:
        problems = []
        lowered = {k.lower(): v for k, v in headers.items()}
        for name, source in step.capture.items():
            if source == "status":
                variables[name] = status
            elif source.startswith("header:"):
                value = lowered.get(source.removeprefix("header:").strip().lower())
                if value is None:
                    problems.append(
                        ExpectationResult(
                            what=f"capture {name} from {source}", expected="present", actual=None, passed=False
                        )
                    )
                else:
                    variables[name] = value
            else:
                try:
                    from_jwt, path = split_source(source)
                    document = jwt_claims(body, text) if from_jwt else body
                    variables[name] = lookup("body" + path.removeprefix("$"), {"body": document})
                except (UndefinedVariable, ValueError) as exc:
                    problems.append(
                        ExpectationResult(
                            what=f"capture {name} from {source}", expected="present", actual=str(exc), passed=False
                        )
                    )
        return problems


def time_variables(now: datetime) -> dict[str, str]:
    """RFC 3339 moments around the step's start, e.g. for expiry dates: `time.in_1h`."""
    return dict(_moments(int(now.timestamp())))


@lru_cache(maxsize=4)
def _moments(second: int) -> tuple[tuple[str, str], ...]:
    # To the second, as the placeholders show them: a load run's many steps in one second share them.
    offsets = {"now": 0, "in_3s": 3, "in_1m": 60, "in_1h": 3600, "ago_1h": -3600, "ago_1d": -86400}
    return tuple(
        (name, datetime.fromtimestamp(second + s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) for name, s in offsets.items()
    )


def _tampered(body: str, changes: dict[str, str]) -> str:
    """A text that is not there would leave the signature intact and the check meaningless."""
    for text, replacement in changes.items():
        if text not in body:
            raise StepError(Outcome.ERROR, f"tamper: {text!r} is not in the signed body")
        body = body.replace(text, replacement)
    return body


def _rendered(expect: Expect, variables: dict[str, Any]) -> Expect:
    """The expectations with their placeholders filled in."""
    checks = [c.model_copy(update={c.test: render(getattr(c, c.test), variables)}) for c in expect.json_checks]
    updates = {"json_checks": checks, "headers": render(expect.headers, variables)}
    if expect.body_matches is not None:
        updates["body_matches"] = render(expect.body_matches, variables)
    return expect.model_copy(update=updates)


def _reading_of(step: Step, actors: dict[str, str], network: Network) -> _Reading:
    paths = step.body_paths
    reference = step.node_reference
    return _Reading(
        node=resolve_node(reference, actors, network) if reference is not None else None,
        templated=any(True for _ in roots(step.expect.model_dump(by_alias=True))),
        timed="time" in roots(step.model_dump(by_alias=True)),
        json=bool(paths),
        text=step.expect.body_matches is not None or any(split_source(path)[0] for path in paths),
    )




def _describe(result: ExpectationResult) -> str:
    return f"{result.what}: expected {_shown(result.expected)}, got {_shown(result.actual)}"


def _shown(value: Any) -> str:
    """Strings in quotes as written (repr would double a pattern's backslashes), the rest as repr."""
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _json_or_marker(content: bytes) -> Any:
    try:
        return json.loads(content.decode("utf-8"))  # JSON is UTF-8 (RFC 8259, section 8.1)
    except ValueError:  # UnicodeDecodeError included
        return NO_JSON


def _text(content: bytes) -> str:
    """A body as evidence: cut at BODY_LIMIT, access tokens cut short (reports get published)."""
    text = content[:BODY_LIMIT].decode("utf-8", errors="replace")
    text = SECRET_IN_BODY.sub(lambda m: f"{m.group(1)}{m.group(2)}…(redacted)", text)
    return text + ("\n… (truncated)" if len(content) > BODY_LIMIT else "")


def _redacted(headers: Mapping[str, str]) -> dict[str, str]:
    """Tokens in evidence are cut short: reports get published, and a token is a secret."""
    out = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS and len(value) > 16:
            value = f"{value[:14]}…(redacted)"
        out[name] = value
    return out
