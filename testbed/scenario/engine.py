"""Replay a scenario against a running network: one check per step.

For each step: fill placeholders, make the call (or run the action), compare the answer
with the expectations, capture values for later steps, and keep the evidence."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import httpx

from nodes.common.xmldsig import SigningIdentity, sign_soap_query
from testbed.files import display_path
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
from testbed.scenario.loader import LoadedScenario, resolve_node
from testbed.scenario.models import Action, Expect, Request, Step
from testbed.scenario.templating import UndefinedVariable, lookup, render
from testbed.topology import Network

BODY_LIMIT = 64 * 1024  # evidence keeps at most this much of a body
SECRET_HEADERS = ("authorization", "dpop")
# Access tokens in bodies: `"access_token": "..."` in JSON, `token=...` in forms.
SECRET_IN_BODY = re.compile(r'("(?:access_token|refresh_token)"\s*:\s*"|(?:^|&)token=)([^"&]{8})[^"&]*')


class StepError(Exception):
    """The step could not be carried out; `outcome` says whose fault that is."""

    def __init__(self, outcome: Outcome, message: str):
        super().__init__(message)
        self.outcome = outcome


@dataclass
class Exchange:
    request: HttpRequestRecord
    response: httpx.Response | None


class Engine:
    def __init__(
        self,
        network: Network,
        context: dict[str, Any],
        client: httpx.Client,
        log_tail: Callable[[str], list[str]],
        signer: SigningIdentity | None = None,
    ):
        """`signer`: what `sign: xmldsig` signs with, the key and certificate the harness
        presents in mutual TLS (a node may insist that the two are the same)."""
        self.network = network
        self.context = context
        self.client = client
        self.log_tail = log_tail
        self.signer = signer

    def run(self, loaded: LoadedScenario, on_check: Callable[[CheckResult], None] = lambda _: None) -> ScenarioResult:
        scenario = loaded.scenario
        variables: dict[str, Any] = {
            **self.context,
            "vars": scenario.variables,
            "actors": {actor: self.context["orgs"][org] for actor, org in scenario.actors.items()},
        }
        failed_captures: dict[str, str] = {}  # variable -> step that should have captured it
        result = ScenarioResult(
            name=scenario.name, file=display_path(loaded.path), sha256=loaded.sha256, description=scenario.description
        )
        for step in scenario.steps:
            check = self._run_step(step, scenario.actors, variables, failed_captures)
            if check.outcome != Outcome.PASSED:
                failed_captures.update(dict.fromkeys(step.capture, step.id))
            result.checks.append(check)
            on_check(check)
        return result

    def _run_step(
        self, step: Step, actors: dict[str, str], variables: dict[str, Any], failed: dict[str, str]
    ) -> CheckResult:
        started = datetime.now(UTC)
        clock = time.perf_counter()
        evidence = Evidence()
        variables["time"] = time_variables(started)
        blocked_by: str | None = None
        try:
            expect = _rendered(step.expect, variables)  # before sending: a missing input stops the step here
            attempts = step.retry.attempts if step.retry else 1
            for attempt in range(attempts):
                if attempt:
                    time.sleep(step.retry.interval if step.retry else 0)
                exchange = self._exchange(step, actors, variables, evidence)
                outcome, message = self._judge(step, expect, exchange, variables, evidence)
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
        if outcome in (Outcome.FAILED, Outcome.ERROR) and evidence.node:
            evidence.node_log_tail = self.log_tail(evidence.node)
        return CheckResult(
            id=step.id,
            title=step.title,
            requirements=step.requirements,
            outcome=outcome,
            message=message,
            blocked_by=blocked_by,
            started=started,
            duration_ms=round((time.perf_counter() - clock) * 1000, 2),
            evidence=evidence,
        )

    def _exchange(self, step: Step, actors: dict[str, str], variables: dict[str, Any], evidence: Evidence) -> Exchange:
        if step.action is not None and step.action.name == "wait":
            time.sleep(step.action.seconds or 0)
            return Exchange(HttpRequestRecord(method="-", url="action wait"), None)
        if step.action is not None:
            request = self._token_request(step.action, variables)
        else:
            assert step.request is not None
            request = step.request
        node = resolve_node(request.node, actors, self.network)
        evidence.node = node
        return self._send(request, node, variables, evidence, step.id)

    def _token_request(self, action: Action, variables: dict[str, Any]) -> Request:
        """`request-access-token` is a shorthand for the call a person would otherwise spell
        out: the requester's trust node asks the holder's authorization server."""
        requester = variables["actors"][action.requester]
        holder = variables["actors"][action.holder]
        return Request(
            node=f"{action.requester}.trust",
            api="internal",
            method="POST",
            path=f"/internal/auth/v2/{requester['subject']}/request-service-access-token",
            json={
                "authorization_server": holder["authorization_server"],
                "scope": action.scope,
                "token_type": action.token_type,
            },
            headers={"Cache-Control": "no-cache"} if action.fresh else {},
        )

    def _send(
        self, request: Request, node: str, variables: dict[str, Any], evidence: Evidence, step_id: str
    ) -> Exchange:
        base = self.context["nodes"][node]["url" if request.api == "public" else "internal_url"]
        url = base + str(render(request.path, variables))
        headers = {k: str(v) for k, v in render(request.headers, variables).items()}
        kwargs: dict[str, Any] = {"headers": headers, "params": render(request.query, variables) or None}
        if request.json_body is not None:
            kwargs["json"] = render(request.json_body, variables)
        elif request.form is not None:
            kwargs["data"] = render(request.form, variables)
        elif request.body is not None:
            kwargs["content"] = self._body(request, variables)
        # The step id travels with the request, for a transport that reports per step (load runs).
        built = self.client.build_request(request.method, url, extensions={"testbed_step": step_id}, **kwargs)
        record = HttpRequestRecord(
            method=built.method,
            url=str(built.url),
            headers=_redacted(built.headers),
            body=_text(built.content) if built.content else None,
        )
        evidence.request = record
        try:
            response = self.client.send(built)
        except httpx.TimeoutException:
            raise StepError(Outcome.ERROR, f"{node} did not answer {built.method} {built.url} in time") from None
        except httpx.HTTPError as exc:
            raise StepError(
                Outcome.ERROR, f"{node} unreachable at {built.url}: {exc.__class__.__name__}: {exc}"
            ) from None
        evidence.response = HttpResponseRecord(
            status=response.status_code,
            headers=_redacted(response.headers),
            body=_text(response.content),
            elapsed_ms=round(response.elapsed.total_seconds() * 1000, 2),
        )
        return Exchange(record, response)

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
            raise StepError(Outcome.ERROR, f"the body cannot be signed: {exc}") from None
        return _tampered(signed, render(request.tamper, variables))

    def _judge(
        self, step: Step, expect: Expect, exchange: Exchange, variables: dict[str, Any], evidence: Evidence
    ) -> tuple[Outcome, str]:
        response = exchange.response
        if response is None:
            status, headers, body, text = 0, {}, NO_JSON, ""
        else:
            status, headers = response.status_code, dict(response.headers)
            body, text = _json_or_marker(response), response.text
        evidence.expectations = evaluate(expect, status, headers, body, text)
        failures = [e for e in evidence.expectations if not e.passed]
        if failures:
            return Outcome.FAILED, "; ".join(_describe(e) for e in failures)
        problems = self._capture(step, status, headers, body, text, variables)
        if problems:
            evidence.expectations.extend(problems)
            return Outcome.FAILED, "; ".join(_describe(e) for e in problems)
        return Outcome.PASSED, ""

    def _capture(
        self, step: Step, status: int, headers: dict[str, str], body: Any, text: str, variables: dict[str, Any]
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


def _describe(result: ExpectationResult) -> str:
    return f"{result.what}: expected {result.expected!r}, got {result.actual!r}"


def _json_or_marker(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return NO_JSON


def _text(content: bytes) -> str:
    """A body as evidence: cut at BODY_LIMIT, access tokens cut short (reports get published)."""
    text = content[:BODY_LIMIT].decode("utf-8", errors="replace")
    text = SECRET_IN_BODY.sub(lambda m: f"{m.group(1)}{m.group(2)}…(redacted)", text)
    return text + ("\n… (truncated)" if len(content) > BODY_LIMIT else "")


def _redacted(headers: httpx.Headers) -> dict[str, str]:
    """Tokens in evidence are cut short: reports get published, and a token is a secret."""
    out = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS and len(value) > 16:
            value = f"{value[:14]}…(redacted)"
        out[name] = value
    return out
