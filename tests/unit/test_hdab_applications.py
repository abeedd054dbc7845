"""Data access applications: the order of states, decisions by kind, completeness."""

import pytest

from nodes.hdab.applications import (
    ApplicationForm,
    TransitionRefused,
    incomplete,
    move,
    new_application,
    permit_subject,
)

APPLICANT = {"did": "did:web:institute", "ura": "90000007", "name": "Institute"}


def application(kind="permit"):
    form = ApplicationForm(
        kind=kind, datasets=["https://a/d"], purpose="A study of regional prevalence", analyses=["count"]
    )
    return new_application(form, APPLICANT)


def test_an_application_is_decided_only_after_completeness_check_and_assessment():
    app = application()
    with pytest.raises(TransitionRefused, match="cannot become permitted"):
        move(app, "permitted")
    move(app, "completeness-check")
    with pytest.raises(TransitionRefused):
        move(app, "permitted")
    move(app, "assessment")
    move(app, "permitted")
    assert [h["status"] for h in app["history"]] == ["received", "completeness-check", "assessment", "permitted"]
    with pytest.raises(TransitionRefused, match="final"):
        move(app, "rejected")


def test_a_data_request_is_approved_not_permitted():
    app = application("data-request")
    move(app, "completeness-check")
    move(app, "assessment")
    with pytest.raises(TransitionRefused, match="decided as approved"):
        move(app, "permitted")
    move(app, "approved")
    assert app["status"] == "approved"


def test_rejection_is_final():
    app = application()
    move(app, "rejected", reason="purpose outside EHDS art. 53")
    assert app["history"][-1]["reason"].startswith("purpose")
    with pytest.raises(TransitionRefused):
        move(app, "completeness-check")


def test_completeness_names_unknown_datasets():
    assert incomplete(application(), {"https://a/d"}) == []
    assert incomplete(application(), set()) == ["dataset https://a/d is not in the catalogue"]


def test_the_permit_names_user_data_purpose_and_analyses():
    subject = permit_subject(application())
    assert subject["id"] == APPLICANT["did"]
    assert subject["datasets"] == ["https://a/d"] and subject["analyses"] == ["count"]
    assert subject["purpose"] and subject["user"]["ura"] == "90000007"


@pytest.mark.parametrize(
    "form",
    [
        {"datasets": [], "purpose": "A study of regional prevalence", "analyses": ["count"]},
        {"datasets": ["d"], "purpose": "short", "analyses": ["count"]},
        {"datasets": ["d"], "purpose": "A study of regional prevalence", "analyses": ["records"]},
        {"datasets": ["d"], "purpose": "A study of regional prevalence", "analyses": ["count"], "extra": 1},
    ],
)
def test_incomplete_forms_are_refused(form):
    with pytest.raises(ValueError):
        ApplicationForm.model_validate(form)


def station_catalogue():
    from nodes.station.catalogue import catalogue

    return catalogue(
        public_url="https://s:1",
        organisation={"name": "S", "ura": "1"},
        slug="d",
        individuals=1000,
        authorization_server="https://s:2/oauth2/s",
        hdab=None,
    )


def test_harvest_reads_json_ld_in_either_form_and_names_a_missing_service():
    from nodes.hdab.catalogue import datasets_of
    from nodes.station.catalogue import ANALYSIS_API

    published = station_catalogue()
    [dataset] = datasets_of(published, "s")
    assert dataset["analysis_endpoint"] == "https://s:1/analysis/v1" and dataset["individuals"] == 1000
    # One service instead of a list, plain strings instead of {"@id": ...}: the same catalogue.
    service = next(s for s in published["dcat:service"] if s["dct:conformsTo"]["@id"] == ANALYSIS_API)
    service["dct:conformsTo"], service["dcat:servesDataset"] = ANALYSIS_API, "https://s:1/catalogue/datasets/d"
    published["dcat:service"] = service
    assert datasets_of(published, "s")[0]["id"] == dataset["id"]
    published["dcat:service"] = []
    with pytest.raises(LookupError, match="no analysis service"):
        datasets_of(published, "s")


# --- the rule each refusal names ------------------------------------------------------------
@pytest.mark.parametrize(
    ("form", "code", "missing"),
    [
        ({"datasets": ["d"], "analyses": ["count"]}, "application-incomplete", ["purpose"]),
        ({"datasets": ["d"], "purpose": "short", "analyses": ["count"]}, "application-incomplete", ["purpose"]),
        (
            {"datasets": [], "purpose": "A study of regional prevalence", "analyses": []},
            "application-incomplete",
            ["analyses", "datasets"],
        ),
        (
            {"datasets": ["d"], "purpose": "A study of regional prevalence", "analyses": ["records"]},
            "analysis-not-offered",
            None,
        ),
        (
            {"datasets": ["d"], "purpose": "A study of regional prevalence", "analyses": ["count"], "extra": 1},
            "application-malformed",
            None,
        ),
    ],
)
def test_a_refused_form_names_its_rule_and_what_is_missing(form, code, missing):
    from pydantic import ValidationError

    from nodes.hdab.applications import form_refusal

    with pytest.raises(ValidationError) as caught:
        ApplicationForm.model_validate(form)
    refusal = form_refusal(caught.value)
    assert (refusal.status, refusal.code) == (422, code)
    assert refusal.extra.get("missing") == missing


def test_each_refused_transition_names_its_rule():
    app = application()
    with pytest.raises(TransitionRefused) as out_of_order:
        move(app, "permitted")
    move(app, "rejected")
    with pytest.raises(TransitionRefused) as closed:
        move(app, "completeness-check")
    request = application("data-request")
    move(request, "completeness-check")
    move(request, "assessment")
    with pytest.raises(TransitionRefused) as kind:
        move(request, "permitted")
    assert [e.value.code for e in (out_of_order, closed, kind)] == [
        "transition-out-of-order",
        "application-closed",
        "decision-kind",
    ]


def test_a_looser_table_is_what_a_faulty_variant_passes():
    app = application()
    move(app, "completeness-check")
    move(app, "permitted", table={"completeness-check": ("assessment", "permitted")})
    assert app["status"] == "permitted"


# --- the faulty variants ------------------------------------------------------------------
def test_a_harvest_that_reads_services_as_datasets_invents_them():
    from nodes.hdab.catalogue import datasets_of

    published = station_catalogue()
    assert len(datasets_of(published, "s")) == 1
    assert len(datasets_of(published, "s", services_too=True)) > 1


def test_the_body_suppresses_a_combined_count_whose_every_part_was_suppressed():
    from nodes.hdab.aggregate import combine

    parts = [{"count": None, "suppressed": True}, {"count": None, "suppressed": True}, {"count": 0}]
    assert combine("count", parts, threshold=10) == {"count": None, "suppressed": True, "complete": False}
    # The faulty variant that skips the body's own check shows a zero that says more than the stations did.
    assert combine("count", parts, threshold=10, recheck=False)["count"] == 0
    assert (
        combine("mean", [{"n": None, "mean": None, "suppressed": True}], threshold=10, recheck=False)["suppressed"]
        is True
    )
