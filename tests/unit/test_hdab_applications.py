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
    move(app, "rejected", "purpose outside EHDS art. 53")
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


def test_harvest_reads_json_ld_in_either_form_and_names_a_missing_service():
    from nodes.hdab.app import _datasets_of
    from nodes.station.catalogue import ANALYSIS_API, catalogue

    published = catalogue("https://s:1", {"name": "S", "ura": "1"}, "d", 1000, "https://s:2/oauth2/s", None)
    [dataset] = _datasets_of(published, "s")
    assert dataset["analysis_endpoint"] == "https://s:1/analysis/v1" and dataset["individuals"] == 1000
    # One service instead of a list, plain strings instead of {"@id": ...}: the same catalogue.
    service = next(s for s in published["dcat:service"] if s["dct:conformsTo"]["@id"] == ANALYSIS_API)
    service["dct:conformsTo"], service["dcat:servesDataset"] = ANALYSIS_API, "https://s:1/catalogue/datasets/d"
    published["dcat:service"] = service
    assert _datasets_of(published, "s")[0]["id"] == dataset["id"]
    published["dcat:service"] = []
    with pytest.raises(LookupError, match="no analysis service"):
        _datasets_of(published, "s")
