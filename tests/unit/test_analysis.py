"""Secondary-use analyses: cohorts, the four aggregates, small-cell suppression, and how the
access body combines station results."""

import pytest
from pydantic import ValidationError

from nodes.hdab.aggregate import combine
from nodes.station.analysis import AnalysisRequest, run


def rows(n: int, **values):
    return [
        {"patient": str(i), "bsn": str(i), "age": 40, "gender": "female", "city": "Zeist", "conditions": [], **values}
        for i in range(n)
    ]


def analysis(**spec):
    return AnalysisRequest.model_validate({"analysis": {"dataset": "d", **spec}}).analysis


def test_count_and_cohort_filters():
    people = rows(12, conditions=["44054006"]) + rows(30, gender="male")
    assert run(analysis(type="count"), people, 10) == {"count": 42, "suppressed": False}
    assert run(analysis(type="count", cohort={"condition": "44054006"}), people, 10)["count"] == 12
    assert run(analysis(type="count", cohort={"gender": "male", "age_min": 41}), people, 10)["count"] == 0


def test_small_counts_are_suppressed_but_zero_is_shown():
    assert run(analysis(type="count"), rows(9), 10) == {"count": None, "suppressed": True}
    assert run(analysis(type="count"), rows(1), 10) == {"count": None, "suppressed": True}
    assert run(analysis(type="count"), rows(10), 10) == {"count": 10, "suppressed": False}
    assert run(analysis(type="count"), [], 10) == {"count": 0, "suppressed": False}
    assert run(analysis(type="count"), rows(4), 3)["count"] == 4  # the threshold is configurable


def test_mean_is_withheld_for_a_small_cohort():
    people = rows(10, bmi=20.0) + rows(10, bmi=30.0)
    assert run(analysis(type="mean", variable="bmi"), people, 10) == {"n": 20, "mean": 25.0, "suppressed": False}
    assert run(analysis(type="mean", variable="bmi"), people[:9], 10)["mean"] is None
    # People without the measurement do not count towards n.
    assert run(analysis(type="mean", variable="bmi"), people + rows(5), 10)["n"] == 20


def test_histogram_bins_include_the_last_edge_and_suppress_small_bins():
    people = rows(15, age=10) + rows(3, age=50) + rows(12, age=100)
    result = run(analysis(type="histogram", variable="age", bins=[0, 18, 65, 100]), people, 10)
    assert [(b["from"], b["to"], b["count"], b["suppressed"]) for b in result["bins"]] == [
        (0, 18, 15, False),
        (18, 65, None, True),
        (65, 100, 12, False),
    ]


def test_cross_table_counts_by_two_categories():
    people = rows(11, age=70) + rows(12, gender="male", age=30) + rows(2, gender="male", age=70)
    cells = run(analysis(type="crosstab", rows="gender", columns="age_band"), people, 10)["cells"]
    assert {(c["row"], c["column"]): c["count"] for c in cells} == {
        ("female", "65+"): 11,
        ("male", "18-39"): 12,
        ("male", "65+"): None,
    }


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "records"},  # nothing at record level
        {"type": "list", "variable": "bsn"},
        {"type": "mean", "variable": "bsn"},  # only numeric variables
        {"type": "histogram", "variable": "age", "bins": [10, 5]},
        {"type": "crosstab", "rows": "bsn", "columns": "gender"},
        {"type": "count", "cohort": {"bsn": "123"}},
    ],
)
def test_record_level_and_unknown_analyses_are_refused(spec):
    with pytest.raises(ValidationError):
        analysis(**spec)


def test_combined_results_leave_suppressed_cells_out_and_say_so():
    stations = [{"count": 40, "suppressed": False}, {"count": None, "suppressed": True}, {"count": 0}]
    assert combine("count", stations, threshold=10) == {"count": 40, "suppressed": False, "complete": False}
    # Only suppressed parts (or zeros beside them) make a small, not an empty, cohort.
    hidden = [{"count": None, "suppressed": True}, {"count": 0, "suppressed": False}]
    assert combine("count", hidden, threshold=10) == {"count": None, "suppressed": True, "complete": False}
    means = [{"n": 10, "mean": 20.0}, {"n": 30, "mean": 30.0}]
    assert combine("mean", means, threshold=10) == {"n": 40, "mean": 27.5, "suppressed": False, "complete": True}
    assert combine("mean", [{"n": None, "mean": None, "suppressed": True}], threshold=10)["suppressed"] is True
    tables = [
        {"rows": "gender", "columns": "city", "cells": [{"row": "f", "column": "Z", "count": 12}]},
        {"rows": "gender", "columns": "city", "cells": [{"row": "f", "column": "Z", "count": None}]},
    ]
    assert combine("crosstab", tables, threshold=10)["cells"] == [
        {"row": "f", "column": "Z", "count": 12, "suppressed": False, "complete": False}
    ]
