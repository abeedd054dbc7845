"""SVG badges for the published site: one small image per implementation that says whether it
conforms, and to which suite version, for a vendor to put on its own pages.

Drawn here as a few shapes and two texts (no font files, no scripts), so a badge is a few
hundred bytes and safe to embed anywhere. Text widths are estimated, not measured: a badge is
never laid out by a browser before it is drawn, and a generous estimate only adds padding.
"""

from __future__ import annotations

from enum import StrEnum
from html import escape

from testbed.publish.suite import PREFIX, short
from testbed.report.model import Verdict


class Standing(StrEnum):
    """What a badge says: the verdict of a run, folded into three words a reader knows."""

    CONFORMS = "conforms"
    DOES_NOT_CONFORM = "does not conform"
    INCOMPLETE = "incomplete"


COLOURS = {Standing.CONFORMS: "#2e7d32", Standing.DOES_NOT_CONFORM: "#c62828", Standing.INCOMPLETE: "#8a6d00"}
LABEL_COLOUR = "#555"
CHAR_WIDTH = 6.6  # px per character of 11px Verdana, a little wide on purpose
PADDING = 12
SHOWN_CHARS = 16  # of the suite version: a digest's start tells suites apart, and a badge stays small


def standing(verdict: Verdict) -> Standing:
    """Only a conforming run conforms and only a failing one does not; a run that errored, was
    interrupted or left a MUST untested says nothing either way."""
    if verdict is Verdict.CONFORMS:
        return Standing.CONFORMS
    if verdict is Verdict.FAILS:
        return Standing.DOES_NOT_CONFORM
    return Standing.INCOMPLETE


def badge_svg(verdict: Verdict, suite_version: str) -> str:
    """The badge: "suite <version>" on the left, the standing on the right in its colour."""
    state = standing(verdict)
    label = f"suite {short(suite_version).removeprefix(PREFIX)[:SHOWN_CHARS]}"
    left, right = _width(label), _width(state.value)
    total = left + right
    title = escape(f"{state.value} (suite version {suite_version})")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<rect width="{left}" height="20" rx="3" fill="{LABEL_COLOUR}"/>'
        f'<rect x="{left}" width="{right}" height="20" rx="3" fill="{COLOURS[state]}"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">'
        f'<text x="{left / 2:g}" y="14">{escape(label)}</text>'
        f'<text x="{left + right / 2:g}" y="14">{escape(state.value)}</text></g></svg>\n'
    )


def _width(text: str) -> int:
    return round(len(text) * CHAR_WIDTH) + PADDING
