"""Aggregate analyses a data station runs for secondary use, over one row of features per
patient. Only aggregates leave: there is no analysis that returns a record, and every count
below the small-cell threshold is suppressed before the result is built (EHDS art. 73(2);
Health-RI data station specification, "Analyse")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from itertools import pairwise
from statistics import fmean
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

NUMERIC = Literal["age", "bmi", "systolic_bp", "weight_kg", "steps_per_day"]
CATEGORICAL = Literal["gender", "city", "age_band"]
AGE_BANDS = ((0, 17, "0-17"), (18, 39, "18-39"), (40, 64, "40-64"), (65, 200, "65+"))
DEFAULT_THRESHOLD = 10


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cohort(Strict):
    """Who is counted: every condition given must hold."""

    condition: str | None = Field(default=None, description="SNOMED CT code of a condition the person has")
    gender: Literal["female", "male"] | None = None
    city: str | None = None
    age_min: int | None = Field(default=None, ge=0)
    age_max: int | None = Field(default=None, ge=0)

    def admits(self, row: dict[str, Any]) -> bool:
        return (
            (self.condition is None or self.condition in row["conditions"])
            and (self.gender is None or row["gender"] == self.gender)
            and (self.city is None or row["city"] == self.city)
            and (self.age_min is None or row["age"] >= self.age_min)
            and (self.age_max is None or row["age"] <= self.age_max)
        )


class Count(Strict):
    type: Literal["count"]
    dataset: str
    cohort: Cohort = Cohort()


class Mean(Strict):
    type: Literal["mean"]
    dataset: str
    cohort: Cohort = Cohort()
    variable: NUMERIC


class Histogram(Strict):
    type: Literal["histogram"]
    dataset: str
    cohort: Cohort = Cohort()
    variable: NUMERIC
    bins: list[float] = Field(min_length=2, max_length=51, description="Ascending bin edges")

    @model_validator(mode="after")
    def _ascending(self) -> Histogram:
        if any(b <= a for a, b in pairwise(self.bins)):
            raise ValueError("bins must be strictly ascending edges")
        return self


class CrossTable(Strict):
    type: Literal["crosstab"]
    dataset: str
    cohort: Cohort = Cohort()
    rows: CATEGORICAL
    columns: CATEGORICAL


Analysis = Annotated[Count | Mean | Histogram | CrossTable, Field(discriminator="type")]
AnalysisType = Literal["count", "mean", "histogram", "crosstab"]
ANALYSIS_TYPES: tuple[str, ...] = get_args(AnalysisType)


class AnalysisRequest(Strict):
    analysis: Analysis


AnyAnalysis = Count | Mean | Histogram | CrossTable


def run(analysis: AnyAnalysis, rows: Iterable[dict[str, Any]], threshold: int) -> dict[str, Any]:
    """The analysis over the rows its cohort admits, with small cells suppressed."""
    cohort = [row for row in rows if analysis.cohort.admits(row)]
    small = _suppressor(threshold)
    if isinstance(analysis, Count):
        return small("count", len(cohort))
    if isinstance(analysis, Mean):
        values = [row[analysis.variable] for row in cohort if analysis.variable in row]
        if len(values) < threshold:
            return {"n": None, "mean": None, "suppressed": True}
        return {"n": len(values), "mean": round(fmean(values), 3), "suppressed": False}
    if isinstance(analysis, Histogram):
        counts = _histogram([row[analysis.variable] for row in cohort if analysis.variable in row], analysis.bins)
        return {
            "variable": analysis.variable,
            "bins": [
                {"from": low, "to": high, **small("count", count)}
                for (low, high), count in zip(pairwise(analysis.bins), counts, strict=True)
            ],
        }
    table = Counter((category(row, analysis.rows), category(row, analysis.columns)) for row in cohort)
    return {
        "rows": analysis.rows,
        "columns": analysis.columns,
        "cells": [{"row": r, "column": c, **small("count", n)} for (r, c), n in sorted(table.items())],
    }


def _suppressor(threshold: int) -> Callable[[str, int], dict[str, Any]]:
    """A count of 1 up to threshold-1 could single a person out: it is replaced by null.
    Zero says nothing about anybody and is shown."""

    def small(name: str, count: int) -> dict[str, Any]:
        hidden = 0 < count < threshold
        return {name: None if hidden else count, "suppressed": hidden}

    return small


def _histogram(values: list[float], edges: list[float]) -> list[int]:
    """Counts per [low, high) bin; the last bin includes its upper edge."""
    counts = [0] * (len(edges) - 1)
    for value in values:
        for index, (low, high) in enumerate(pairwise(edges)):
            last = index == len(counts) - 1
            if low <= value < high or (last and value == high):
                counts[index] += 1
                break
    return counts


def category(row: dict[str, Any], variable: str) -> str:
    if variable == "age_band":
        return next(label for low, high, label in AGE_BANDS if low <= row["age"] <= high)
    return str(row[variable])
