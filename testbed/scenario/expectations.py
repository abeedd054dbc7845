"""Compare a response with a step's expectations; every expectation yields a result with
what was expected and what was seen, so a report can show the difference."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from protocols.jsonpath import PathNotFound, find
from testbed.report.model import ExpectationResult
from testbed.scenario.models import Expect, JsonExpectation

NO_JSON = object()  # the response body was not JSON


def jwt_claims(body: Any, text: str) -> dict[str, Any]:
    """The claims of a JWT the response is, as a JSON string or as plain text (read, not
    verified: a scenario looks into what a node issued; nodes verify signatures)."""
    token = body if isinstance(body, str) else text.strip()
    try:
        claims = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError) as exc:
        raise ValueError(f"the response body is not a readable JWT ({exc.__class__.__name__})") from None
    if not isinstance(claims, dict):
        raise ValueError("the JWT's payload is not a JSON object")
    return claims


def split_source(source: str) -> tuple[bool, str]:
    """`jwt:$.path` reads a JWT's claims; `$.path` the JSON body."""
    return (True, source.removeprefix("jwt:")) if source.startswith("jwt:") else (False, source)


def evaluate(
    expect: Expect,
    status: int,
    headers: Mapping[str, str],
    *,
    body: Any,
    text: str = "",
    passed_too: bool = True,
    tls_alert: str | None = None,
) -> list[ExpectationResult]:
    """Every expectation with what was seen; `passed_too=False` leaves out those that hold
    (a load run reports only what went wrong, and judges many steps). `tls_alert`: the node
    answered no HTTP at all but ended the TLS connection with this alert."""
    judged = _judged(expect, status, headers, body, text) if tls_alert is None else iter(())
    if expect.tls is not None:
        seen = f"refused ({tls_alert})" if tls_alert else f"an HTTP answer, status {status}"
        judged = iter([("tls", "refused without an HTTP answer", seen, tls_alert is not None), *judged])
    return [
        ExpectationResult(what=what, expected=expected, actual=actual, passed=passed)
        for what, expected, actual, passed in judged
        if passed_too or not passed
    ]


Judged = tuple[str, Any, Any, bool]  # what, expected, actual, passed


def _judged(expect: Expect, status: int, headers: Mapping[str, str], body: Any, text: str) -> Iterator[Judged]:
    if expect.status is not None:
        allowed = expect.status if isinstance(expect.status, list) else [expect.status]
        yield "status", expect.status, status, status in allowed
    lowered = {k.lower(): v for k, v in headers.items()} if expect.headers else {}
    for name, pattern in expect.headers.items():
        actual = lowered.get(name.lower())
        passed = actual is not None and re.search(pattern, actual) is not None
        yield f"header {name}", f"matches /{pattern}/", actual, passed  # as written: no repr escaping
    for check in expect.json_checks:
        yield _json(check, body, text)
    if expect.body_matches is not None:
        found = re.search(expect.body_matches, text) is not None
        yield "body", f"matches /{expect.body_matches}/", text if len(text) <= 300 else text[:300] + "…", found


def _json(check: JsonExpectation, body: Any, text: str) -> Judged:
    test = check.test
    expected = getattr(check, test)
    what = f"json {check.path} {test.replace('_', ' ')}"
    from_jwt, path = split_source(check.path)
    if from_jwt:
        try:
            body = jwt_claims(body, text)
        except ValueError as exc:
            return what, expected, f"({exc})", False
    if body is NO_JSON:
        return what, expected, "(body is not JSON)", False
    try:
        actual = find(body, path)
    except PathNotFound as exc:
        return what, expected, f"(absent: {exc})", test == "exists" and expected is False
    return what, expected, _short(actual), _holds(test, expected, actual)


def _holds(test: str, expected: Any, actual: Any) -> bool:
    match test:
        case "equals":
            return _same(actual, expected)
        case "not_equals":
            return not _same(actual, expected)
        case "exists":
            return expected is True
        case "contains":
            if isinstance(actual, str):
                return isinstance(expected, str) and expected in actual
            return isinstance(actual, list) and any(_same(item, expected) for item in actual)
        case "matches":
            return isinstance(actual, str) and re.search(expected, actual) is not None
        case "length":
            return isinstance(actual, list | str | dict) and len(actual) == expected
        case "at_least":
            return isinstance(actual, int | float) and not isinstance(actual, bool) and actual >= expected
        case "one_of":
            return any(_same(actual, option) for option in expected)
    raise ValueError(f"unknown expectation {test}")


def _same(actual: Any, expected: Any) -> bool:
    """Equality that does not let True equal 1 (JSON booleans are not numbers)."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and bool(actual == expected)
    return bool(actual == expected)


def _short(value: Any, limit: int = 2000) -> Any:
    text = repr(value)
    return value if len(text) <= limit else text[:limit] + "…"
