"""How nodes run. `process` is the default and needs nothing but Python."""

from __future__ import annotations

from testbed.errors import ConfigError
from testbed.runtime.process import ProcessRuntime

RUNTIMES = {"process": ProcessRuntime}


def get_runtime(name: str) -> ProcessRuntime:
    if name not in RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r}; available: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]()
