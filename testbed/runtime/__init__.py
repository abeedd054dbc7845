"""How nodes run. `process` is the default and needs nothing but Python; `docker` runs each
node as a container (it needs a Docker Engine and the images `make images` builds)."""

from __future__ import annotations

from typing import Protocol

from testbed.errors import ConfigError
from testbed.pki import NetworkCA
from testbed.runtime.docker import DockerRuntime
from testbed.runtime.plan import NetworkPlan
from testbed.runtime.process import ProcessRuntime, Progress
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.topology import LoadedNetwork


class Runtime(Protocol):
    name: str

    def start(
        self,
        loaded: LoadedNetwork,
        plan: NetworkPlan,
        folder: RunFolder,
        *,
        state: RunState,
        ca: NetworkCA,
        owner_pid: int | None,
        progress: Progress,
    ) -> None: ...

    def stop(self, state: RunState) -> list[str]: ...

    def log_tail(self, node: NodeState) -> list[str]: ...


RUNTIMES: dict[str, type[Runtime]] = {"process": ProcessRuntime, "docker": DockerRuntime}


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r}; available: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]()
