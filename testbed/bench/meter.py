"""A Locust plugin for the load-driver bench, loaded beside the driver's own locustfile
(`-f driver.py,meter.py`) so that raw Locust and the harness's driver are metered alike.

Every half second each process that sends requests appends one line to `<pid>.jsonl` in the
folder $TESTBED_BENCH_METER names: its monotonic clock, its CPU time and how many requests
it has completed and failed. The bench reads a steady window from these lines, leaving out
start-up (imports, TLS contexts, first connections), which Locust's own figures include.
Runs only inside Locust's processes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner

from testbed.bench import METER_FOLDER_VARIABLE

INTERVAL_SECONDS = 0.5


class Meter:
    def __init__(self, path: Path):
        self.path = path
        self.completed = 0
        self.failed = 0

    def count(self, exception: BaseException | None = None, **_: Any) -> None:
        if exception is None:
            self.completed += 1
        else:
            self.failed += 1

    def write_forever(self) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            while True:
                now, cpu = time.monotonic(), time.process_time()
                out.write(json.dumps({"t": now, "cpu": cpu, "ok": self.completed, "failed": self.failed}) + "\n")
                out.flush()
                gevent.sleep(INTERVAL_SECONDS)


@events.init.add_listener  # type: ignore[untyped-decorator]
def _start(environment: Environment, **_: Any) -> None:
    folder = os.environ.get(METER_FOLDER_VARIABLE)
    if not folder or isinstance(environment.runner, MasterRunner):
        return  # a master sends no requests of its own
    meter = Meter(Path(folder) / f"{os.getpid()}.jsonl")
    environment.events.request.add_listener(meter.count)  # type: ignore[no-untyped-call]
    gevent.spawn(meter.write_forever)
