import pytest

from protocols.jsonpath import JsonPathError, PathNotFound, exists, find, parse
from testbed.scenario.templating import UndefinedVariable, render, roots

CONTEXT = {
    "orgs": {"gp": {"ura": "90000003", "did": "did:web:x"}},
    "nodes": {"hospital-station": {"url": "https://127.0.10.3:8443"}},
    "token": "abc",
    "count": 3,
    "items": [{"id": "first"}, {"id": "second"}],
}


def test_jsonpath_reads_members_indices_and_quoted_names():
    doc = {"a": {"b-c": [1, {"d": True}]}, "x y": 5}
    assert parse("$.a['b-c'][1].d") == ("a", "b-c", 1, "d")
    assert find(doc, "$.a.b-c[1].d") is True
    assert find(doc, "$.a.b-c[-1].d") is True
    assert find(doc, "$['x y']") == 5
    assert find(doc, "$") == doc
    assert exists(doc, "$.a") and not exists(doc, "$.a.z")


def test_jsonpath_errors():
    with pytest.raises(PathNotFound, match=r"\$\.a has no member 'z'"):
        find({"a": {}}, "$.a.z")
    with pytest.raises(PathNotFound, match=r"no item \[3\]"):
        find([1, 2], "$[3]")
    with pytest.raises(JsonPathError):
        parse("a.b")
    with pytest.raises(JsonPathError):
        parse("$.a..b")


def test_whole_placeholder_keeps_type_inline_becomes_text():
    assert render("{{ count }}", CONTEXT) == 3
    assert render(" {{ items[1].id }} ", CONTEXT) == "second"
    assert render("Bearer {{ token }}", CONTEXT) == "Bearer abc"
    assert render("n={{ count }}", CONTEXT) == "n=3"
    assert render("{{ nodes.hospital-station.url }}/fhir", CONTEXT) == "https://127.0.10.3:8443/fhir"


def test_render_walks_lists_and_dicts():
    value = {"ura": "{{ orgs.gp.ura }}", "list": ["{{ token }}", 1, None], "{{ token }}": True}
    assert render(value, CONTEXT) == {"ura": "90000003", "list": ["abc", 1, None], "abc": True}


def test_undefined_variables_name_what_is_missing():
    with pytest.raises(UndefinedVariable, match="'nothing' is not defined") as caught:
        render("{{ nothing.here }}", CONTEXT)
    assert caught.value.root == "nothing"
    with pytest.raises(UndefinedVariable, match="has no member 'nope'"):
        render("{{ orgs.gp.nope }}", CONTEXT)


def test_roots_lists_first_names():
    value = {"a": "{{ token }} and {{ orgs.gp.ura }}", "b": ["{{ items[0].id }}"], "c": "plain"}
    assert sorted(roots(value)) == ["items", "orgs", "token"]


def test_decrement_filter_takes_one_off_a_number():
    assert render("{{ count | decrement }}", {"count": 42}) == 41
    with pytest.raises(ValueError, match="a number is needed"):
        render("{{ count | decrement }}", {"count": "42"})
