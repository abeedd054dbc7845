"""What a node is told when it starts. The harness writes it as JSON; the node reads it.

The same model is the container contract later on, so every field says what it is for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from protocols.settings import RoleSettings

SettingsT = TypeVar("SettingsT", bound=RoleSettings)


class OrganisationInfo(BaseModel):
    id: str
    name: str
    ura: str
    city: str = ""
    category: str = ""


class TlsConfig(BaseModel):
    cert: Path  # this node's certificate (server and client use)
    key: Path
    ca: Path  # the network CA: the only one this node trusts


class NodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    role: str
    organisation: OrganisationInfo
    seed: str  # the network seed: keys and synthetic data derive from it
    host: str  # address both listeners bind to
    public_port: int
    internal_port: int
    public_url: str  # the URL this node advertises and everyone uses
    internal_url: str
    tls: TlsConfig
    data_dir: Path  # where the node keeps its storage
    parent_pid: int | None = None  # exit when this process is gone (harness-owned runs)
    peers: dict[str, str] = {}  # e.g. "trust_internal" -> URL, "consent" -> URL
    settings: dict[str, Any] = {}  # role-specific: protocols.settings has each role's model
    # Where this node's log lines go when it shares its process with other nodes (HostConfig);
    # a node alone in its process or container logs to its standard error.
    log_file: Path | None = None
    # An HTTP proxy, http://<this node's name>@host:port, through which the node opens every
    # outbound HTTPS connection as a CONNECT tunnel (TLS stays end to end, URLs unchanged): the
    # harness's link faults (testbed.faults.proxy). None: connect to peers directly.
    egress_proxy: str | None = None

    def role_settings(self, model: type[SettingsT]) -> SettingsT:
        """The settings as the role's model (e.g. StationSettings), defaults filled in; raises
        pydantic's ValidationError for settings the role does not take."""
        return model.model_validate(self.settings)

    @classmethod
    def read(cls, path: Path) -> NodeConfig:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")


class HostConfig(BaseModel):
    """Several nodes in one OS process (`python -m nodes --host host.json`): one event loop,
    each node still with its own address, ports, certificate, storage and log. The control
    listener lets the harness stop and start one hosted node without touching the others;
    like every internal API it asks for a certificate from the network CA."""

    model_config = ConfigDict(extra="forbid")

    name: str  # how logs and errors name this process
    nodes: list[Path]  # each hosted node's NodeConfig (JSON)
    control_host: str
    control_port: int
    tls: TlsConfig  # the control listener's certificate (valid for control_host)
    parent_pid: int | None = None  # exit when this process is gone (harness-owned runs)

    @property
    def control_url(self) -> str:
        return f"https://{self.control_host}:{self.control_port}"

    @classmethod
    def read(cls, path: Path) -> HostConfig:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
