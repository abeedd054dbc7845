"""How nodes run. `process` is the default and needs nothing but Python; `docker` runs each
node as a container (it needs a Docker Engine and the images `make images` builds); `swarm`
deploys the network as a stack on Docker Swarm (a swarm manager, those images on every machine)."""

from __future__ import annotations

from typing import Protocol

from testbed.errors import ConfigError
from testbed.pki import NetworkCA
from testbed.runtime.docker import DockerRuntime
from testbed.runtime.plan import NetworkPlan
from testbed.runtime.process import ProcessRuntime, Progress
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.runtime.swarm import SwarmRuntime
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
        link_proxy: bool = True,
    ) -> None: ...

    def stop(self, state: RunState) -> list[str]: ...

    def log_tail(self, node: NodeState) -> list[str]: ...


RUNTIMES: dict[str, type[Runtime]] = {"process": ProcessRuntime, "docker": DockerRuntime, "swarm": SwarmRuntime}


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r}; available: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]()
