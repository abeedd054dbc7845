"""Copies of the BgZ-with-consent scenario against the hosted network (scenarios/networks/
hosted.yaml), with other organisations as requester and holder: the steps stay as written,
so a hosted organisation is addressed exactly as one with its own nodes."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

HOSTED_NETWORK = ROOT / "scenarios" / "networks" / "hosted.yaml"
BGZ_CONSENT = ROOT / "scenarios" / "bgz-consent.yaml"


def hosted_copy(folder: Path, *, requester: str, holder: str) -> Path:
    """The scenario with `requester` and `holder` as its actors, named after them."""
    text = BGZ_CONSENT.read_text(encoding="utf-8")
    name = f"bgz-consent-{requester}-at-{holder}"
    replacements = {
        "name: bgz-consent\n": f"name: {name}\n",
        "network: networks/reference.yaml\n": f"network: {HOSTED_NETWORK}\n",
        "actors:\n  requester: gp\n  holder: hospital\n": f"actors:\n  requester: {requester}\n  holder: {holder}\n",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{BGZ_CONSENT.name} no longer holds {old!r} once"
        text = text.replace(old, new)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
