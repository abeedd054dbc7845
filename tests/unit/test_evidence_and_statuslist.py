import pytest

from nodes.trust.statuslist import LIST_BITS, encode, is_set
from protocols import vcjwt as vc
from testbed.scenario.engine import _text, time_variables
from testbed.scenario.expectations import NO_JSON, evaluate
from testbed.scenario.models import Expect
from testbed.scenario.templating import UndefinedVariable, render


def test_access_tokens_are_cut_short_in_recorded_bodies():
    assert _text(b'{"access_token":"abcdefghijklmnopqrstuvwxyz"}') == '{"access_token":"abcdefgh…(redacted)"}'
    assert _text(b"grant=x&token=abcdefghijklmnop") == "grant=x&token=abcdefgh…(redacted)"
    assert _text(b'{"scope":"bgz"}') == '{"scope":"bgz"}'


def test_long_bodies_are_truncated():
    assert _text(b"x" * 70000).endswith("… (truncated)")


def test_status_list_bits():
    encoded = encode([0, 9, LIST_BITS - 1])
    assert [is_set(encoded, i) for i in (0, 1, 8, 9, LIST_BITS - 1)] == [True, False, False, True, True]
    assert not is_set(encode([]), 5)
    with pytest.raises(vc.CredentialError, match="outside the list"):
        is_set(encoded, LIST_BITS)
    with pytest.raises(vc.CredentialError, match="cannot be decoded"):
        is_set("not-gzip", 0)


def test_filters():
    context = {"did": "did:web:host%3A8443:iam:x", "obj": {"a": [1]}}
    assert render("/{{ did | urlencode }}", context) == "/did%3Aweb%3Ahost%253A8443%3Aiam%3Ax"
    with pytest.raises(UndefinedVariable, match="unknown filter"):
        render("{{ did | nope }}", context)


def test_jwt_expectations_read_the_claims_of_a_jwt_body():
    from protocols.keys import derive_key

    token = vc.sign({"iss": "did:x", "aud": ["a", "b"]}, "did:x", derive_key("s", "n", "x"))
    expect = Expect.model_validate(
        {"json": [{"path": "jwt:$.iss", "equals": "did:x"}, {"path": "jwt:$.aud", "contains": "b"}]}
    )
    assert all(r.passed for r in evaluate(expect, 200, {}, body=token))  # a JSON string body
    assert all(r.passed for r in evaluate(expect, 200, {}, body=NO_JSON, text=token))  # a plain-text body
    [bad, _] = evaluate(expect, 200, {}, body=NO_JSON, text="not a jwt")
    assert not bad.passed and "not a readable JWT" in str(bad.actual)


def test_time_variables_are_rfc3339_around_the_step():
    from datetime import UTC, datetime

    moments = time_variables(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
    assert moments["now"] == "2026-01-01T12:00:00Z"
    assert moments["in_1h"] == "2026-01-01T13:00:00Z" and moments["ago_1h"] == "2026-01-01T11:00:00Z"


def test_cache_control_max_age():
    from nodes.trust.statuslist import _max_age

    assert _max_age("public, max-age=60") == 60
    assert _max_age("no-cache") == 0
    assert _max_age("max-age=abc") == 0


def test_wrk_output_is_read():
    from testbed.bench.drivers import parse_wrk

    sample = """Running 4s test @ https://127.0.0.1:9555/token
  Latency Distribution
     50%  762.00us
     99%    1.19ms
  20934 requests in 4.07s, 1.86MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   5141.16
"""
    result = parse_wrk(sample)
    # Throughput counts answered requests only, not wrk's figure that includes refusals.
    assert result["per_second"] == round(20922 / 4.07, 1) and result["requests"] == 20934
    assert result["statuses"] == {"2xx": 20922, "other": 12, "socket errors": 0}
    assert (result["p50_ms"], result["p99_ms"]) == (0.76, 1.19)
    with pytest.raises(RuntimeError, match="measured nothing"):
        parse_wrk("unable to connect")


@pytest.mark.parametrize(
    ("value", "pattern", "matches"),
    [
        ("Huisartsenpraktijk Het Plein", "huisarts*", True),
        ("Huisartsenpraktijk Het Plein", "*plein", True),
        ("Huisartsenpraktijk Het Plein", "*het*", True),
        ("Huisartsenpraktijk Het Plein", "het*", False),
        ("Huisartsenpraktijk Het Plein", "huisartsenpraktijk het plein", True),
        ("Huisartsenpraktijk Het Plein", "HUISARTSENPRAKTIJK HET PLEIN", True),
        ("Huisartsenpraktijk Het Plein", "huisartsenpraktijk", False),  # no wildcard: the whole value
        (None, "*", False),
    ],
)
def test_discovery_search_wildcards(value, pattern, matches):
    from nodes.trust.discovery import _matches

    assert _matches(value, pattern) is matches
