import pytest

from testbed.scenario.expectations import NO_JSON, evaluate
from testbed.scenario.models import Expect

BODY = {"active": True, "count": 1, "scope": "bgz", "list": ["a", "b"], "nested": {"n": 12}}


def check(json_checks, body=BODY, status=200, headers=None, **expect):
    return evaluate(Expect.model_validate({"json": json_checks, **expect}), status, headers or {}, body=body)


@pytest.mark.parametrize(
    ("expectation", "passes"),
    [
        ({"path": "$.scope", "equals": "bgz"}, True),
        ({"path": "$.scope", "equals": "other"}, False),
        ({"path": "$.active", "equals": 1}, False),  # a JSON boolean is not a number
        ({"path": "$.count", "equals": True}, False),
        ({"path": "$.count", "not_equals": 2}, True),
        ({"path": "$.scope", "exists": True}, True),
        ({"path": "$.missing", "exists": False}, True),
        ({"path": "$.missing", "exists": True}, False),
        ({"path": "$.scope", "exists": False}, False),
        ({"path": "$.list", "contains": "b"}, True),
        ({"path": "$.list", "contains": "c"}, False),
        ({"path": "$.scope", "contains": "gz"}, True),
        ({"path": "$.scope", "matches": "^b.z$"}, True),
        ({"path": "$.count", "matches": "1"}, False),  # only strings match patterns
        ({"path": "$.list", "length": 2}, True),
        ({"path": "$.nested.n", "at_least": 12}, True),
        ({"path": "$.nested.n", "at_least": 13}, False),
        ({"path": "$.active", "at_least": 0}, False),
        ({"path": "$.scope", "one_of": ["x", "bgz"]}, True),
        ({"path": "$.missing", "equals": None}, False),
    ],
)
def test_json_expectations(expectation, passes):
    [result] = check([expectation])
    assert result.passed is passes
    assert result.what.startswith(f"json {expectation['path']}")


def test_status_and_headers():
    results = evaluate(
        Expect.model_validate({"status": [401, 403], "headers": {"www-authenticate": "^Bearer"}}),
        401,
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        body=NO_JSON,
    )
    assert [r.passed for r in results] == [True, True]
    [status] = evaluate(Expect.model_validate({"status": 200}), 500, {}, body=NO_JSON)
    assert not status.passed and status.actual == 500


def test_json_checks_on_a_non_json_body_fail_clearly():
    [result] = check([{"path": "$.a", "exists": True}], body=NO_JSON)
    assert not result.passed and result.actual == "(body is not JSON)"


def test_an_expectation_names_exactly_one_test():
    with pytest.raises(ValueError, match="exactly one"):
        Expect.model_validate({"json": [{"path": "$.a", "equals": 1, "exists": True}]})
    with pytest.raises(ValueError, match="exactly one"):
        Expect.model_validate({"json": [{"path": "$.a"}]})
