"""The run folder: what a run started and where, kept on disk so that `testbed up`,
`status` and `down` work across separate invocations, and leftovers can be cleaned."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from testbed.errors import RunStateError
from testbed.runtime.plan import NodePlan

CURRENT = "current"  # file in the state root naming the run `status` and `down` act on


class NodeState(BaseModel):
    plan: NodePlan
    pid: int | None = None  # process id (process runtime), None for nodes not started by us
    # Process runtime, a node sharing its process: the control listener of that process, which
    # stops and starts this node alone (nodes.common.host).
    control_url: str | None = None
    process_log: str | None = None  # ... and that process's own log (what it says about all its nodes)
    container: str | None = None  # container name (docker runtime)
    config_path: str | None = None
    log_path: str | None = None
    product: str | None = None  # the implementation the node says it is (asked once, with its role)
    version: str | None = None  # the version it reports, when it says


class LinkProxyState(BaseModel):
    """The run's link-fault proxy (testbed.faults.proxy): every node's outbound connections go
    through it, and the harness sets link faults over its control listener."""

    url: str  # where the harness reaches the proxy (http://127.0.0.1:<port>)
    node_url: str  # where the nodes reach it (the same on the process runtime)
    control: str  # host:port of its control listener (mutual TLS), as the harness reaches it
    config_path: str
    pid: int | None = None  # process runtime
    container: str | None = None  # docker runtime


class RunState(BaseModel):
    run_id: str
    phases: dict[str, float] = {}  # seconds of each phase of starting the network, in order
    runtime: str
    network_file: str
    network_sha256: str
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    owner_pid: int | None = None  # the harness process that owns the nodes, if any
    trust_bundle: str = ""  # PEM file with every CA the harness and the nodes trust
    client_cert: str = ""  # the harness's own certificate: internal APIs ask for one (mutual TLS)
    client_key: str = ""
    status: Literal["starting", "up", "stopped"] = "starting"
    nodes: list[NodeState] = Field(default_factory=list)
    link_proxy: LinkProxyState | None = None  # None: the run's nodes connect to each other directly
    context: dict[str, Any] = Field(default_factory=dict)  # bootstrap output, for scenarios

    def owner_alive(self) -> bool:
        """True while the harness process that owns this run's nodes still exists."""
        if self.owner_pid is None:
            return False
        try:
            os.kill(self.owner_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class RunFolder:
    """`<state root>/runs/<run id>/` holds state.json, the CA, node configs and node data;
    `<reports root>/<run id>/` holds the reports and the node logs."""

    def __init__(self, state_root: Path, reports_root: Path, run_id: str, *, report_dir: Path | None = None):
        """`report_dir`: where the reports go, when not `<reports root>/<run id>`."""
        self.state_root = state_root
        self.run_id = run_id
        self.state_dir = state_root / "runs" / run_id
        self.report_dir = report_dir or reports_root / run_id
        self.logs_dir = self.report_dir / "logs"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    def create(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=False)
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    def save(self, state: RunState) -> None:
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(state.model_dump_json(indent=2), encoding="utf-8")
        temporary.replace(self.state_file)

    def load(self) -> RunState:
        try:
            return RunState.model_validate_json(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunStateError(f"run {self.run_id!r} has no state at {self.state_file}") from None
        except (ValidationError, json.JSONDecodeError) as exc:
            raise RunStateError(f"{self.state_file}: unreadable run state: {exc}") from exc

    def mark_current(self) -> None:
        (self.state_root / CURRENT).write_text(self.run_id, encoding="utf-8")

    def remove_state(self) -> None:
        """Node data, keys and configs go; reports and logs stay."""
        shutil.rmtree(self.state_dir, ignore_errors=True)
        current = self.state_root / CURRENT
        if current.exists() and current.read_text(encoding="utf-8").strip() == self.run_id:
            current.unlink()


def current_run_id(state_root: Path) -> str:
    try:
        return (state_root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise RunStateError("no network is up (start one with `testbed up`)") from None


def all_run_ids(state_root: Path) -> list[str]:
    runs = state_root / "runs"
    return sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.exists() else []


def new_run_id(prefix: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{prefix}-{secrets.token_hex(2)}"
