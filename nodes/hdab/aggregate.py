"""Combining the stations' results of one central task. Each station has already suppressed
its small cells; a suppressed cell is left out of the total, and the total says it is then
incomplete. The combined result gets the small-cell rule once more before it leaves (output
checking by the access body, EHDS art. 73(2))."""

from __future__ import annotations

from typing import Any


def combine(kind: str, results: list[dict[str, Any]], *, threshold: int, recheck: bool = True) -> dict[str, Any]:
    """The stations' results as one; `recheck=False` (a faulty variant only) skips the body's
    own small-cell rule and counts a suppressed part as zero."""
    if not recheck:
        threshold = 0
    if kind == "count":
        return _cell("count", [r.get("count") for r in results], threshold)
    if kind == "mean":
        parts = [(r["n"], r["mean"]) for r in results if not r.get("suppressed") and r.get("n")]
        n = sum(count for count, _ in parts)
        if n < threshold or n == 0:
            return {"n": None, "mean": None, "suppressed": True, "complete": False}
        mean = sum(count * value for count, value in parts) / n
        return {"n": n, "mean": round(mean, 3), "suppressed": False, "complete": len(parts) == len(results)}
    if kind == "histogram":
        bins = [[b for b in r["bins"]] for r in results]
        first = bins[0]
        return {
            "variable": results[0].get("variable"),
            "bins": [
                {"from": b["from"], "to": b["to"], **_cell("count", [s[i].get("count") for s in bins], threshold)}
                for i, b in enumerate(first)
            ],
        }
    cells: dict[tuple[str, str], list[int | None]] = {}
    for result in results:
        for cell in result["cells"]:
            cells.setdefault((cell["row"], cell["column"]), []).append(cell.get("count"))
    return {
        "rows": results[0].get("rows"),
        "columns": results[0].get("columns"),
        "cells": [
            # A station without a cell counted nobody there: zero, not unknown.
            {"row": r, "column": c, **_cell("count", counts + [0] * (len(results) - len(counts)), threshold)}
            for (r, c), counts in sorted(cells.items())
        ],
    }


def _cell(name: str, counts: list[int | None], threshold: int) -> dict[str, Any]:
    known = [c for c in counts if c is not None]
    total = sum(known)
    # Zero from the known parts while some part was suppressed is no zero: it is small.
    hidden = 0 < total < threshold or (total == 0 and len(known) < len(counts) and threshold > 0)
    return {name: None if hidden else total, "suppressed": hidden, "complete": len(known) == len(counts)}
