"""A node's settings are typed per role (protocols.settings): the harness refuses wrong ones
with the network file, and a node started by hand refuses the same ones before it serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from nodes.__main__ import main
from protocols.nodeconfig import NodeConfig, OrganisationInfo, TlsConfig
from protocols.settings import SETTINGS_BY_ROLE, StationSettings, TrustSettings, settings_for


def _config(tmp_path: Path, role: str, settings: dict[str, Any]) -> Path:
    config = NodeConfig(
        name="n", role=role, organisation=OrganisationInfo(id="o", name="O", ura="00000001"), seed="s",
        host="127.0.0.1", public_port=1, internal_port=2, public_url="https://x", internal_url="https://x",
        tls=TlsConfig(cert=tmp_path / "c", key=tmp_path / "k", ca=tmp_path / "a"), data_dir=tmp_path,
        settings=settings,
    )  # fmt: skip
    path = tmp_path / "node.json"
    config.write(path)
    return path


def test_defaults_are_the_nodes_defaults() -> None:
    station = settings_for("station", {})
    assert isinstance(station, StationSettings)
    assert (station.patients, station.min_cell_size, station.dataset, station.scopes) == (
        1000,
        10,
        "care-records",
        None,
    )
    trust = settings_for("trust", {"token_lifetime_seconds": 60})
    assert (
        isinstance(trust, TrustSettings)
        and trust.token_lifetime_seconds == 60
        and trust.status_list_max_age_seconds == 0
    )


@pytest.mark.parametrize(
    ("role", "settings", "complaint"),
    [
        ("station", {"patients": "many"}, "valid integer"),
        ("station", {"patients": -5}, "greater than or equal to 1"),
        ("vault", {"pods": 10**9}, "less than or equal to 100000"),
        ("consent", {"accept_unsigned_queries": "perhaps"}, "valid boolean"),
        ("hdab", {"colour": "red"}, "Extra inputs are not permitted"),
        ("trust", {"token_lifetime_seconds": 0}, "greater than or equal to 1"),
    ],
)
def test_wrong_settings_are_refused(role: str, settings: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        settings_for(role, settings)


@pytest.mark.parametrize("role", sorted(SETTINGS_BY_ROLE))
def test_a_node_started_with_settings_its_role_does_not_take_exits_2(
    tmp_path: Path, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_config(tmp_path, role, {"no_such_setting": 1}))]) == 2
    assert f"settings of a {role} node" in capsys.readouterr().err
