"""Interrupts that land where a run must not be cut short: during teardown (the run still ends
as interrupted, never with exit 0) and once its results are final (reports and exit code
agree). In-process, with a stand-in network whose teardown receives the signal."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from testbed import interrupts
from testbed.conformance.catalogue import Catalogue
from testbed.conformance.runner import RunInterrupted, run_on_network
from testbed.network import NetworkOptions
from testbed.report.model import Outcome, Verdict
from testbed.runtime.state import RunFolder
from tests.unit.test_runner_and_schemas import results_with


@dataclass(kw_only=True)
class StandInOptions(NetworkOptions):
    """A network that is 'up' at once; its teardown gets `signals` (as a person pressing Ctrl-C)."""

    signals: int = 0

    def network(self, loaded: Any) -> contextlib.AbstractContextManager[Any]:
        return self._session()

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        try:
            yield SimpleNamespace(state=SimpleNamespace(nodes=[], phases={}))
        finally:
            with interrupts.held():  # as stop_network tears down
                for _ in range(self.signals):
                    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def fresh_interrupts(monkeypatch):
    """The CLI's handling of SIGINT and SIGTERM, with a clean count (the module keeps one for
    the whole process), and pytest's own handlers back afterwards."""
    monkeypatch.setattr(interrupts, "_state", interrupts._State())
    previous = {sig: signal.getsignal(sig) for sig in interrupts.SIGNALS}
    interrupts.install()
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def options(tmp_path: Path, signals: int) -> StandInOptions:
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", "run")
    return StandInOptions(network_path=None, runtime="process", folder=folder, signals=signals)


def test_an_interrupt_during_teardown_ends_the_run_as_interrupted(tmp_path, fresh_interrupts):
    results = results_with((Outcome.PASSED, ["STATION-META-01"]))
    with pytest.raises(RunInterrupted) as caught:
        run_on_network(
            options(tmp_path, signals=1), None, results, catalogue=Catalogue.load(), work=lambda _running: None
        )  # type: ignore[arg-type]
    final = caught.value.results
    assert final.verdict == Verdict.INTERRUPTED and final.exit_code == interrupts.INTERRUPTED
    assert [c.id for _, c in final.all_checks()] == ["c0"]  # the finished check is kept
    assert interrupts.holding()  # from here on the results stay as they are: the exit code is 130


def test_a_run_no_interrupt_reaches_keeps_its_verdict(tmp_path, fresh_interrupts):
    results = results_with((Outcome.PASSED, ["STATION-META-01"]))
    final = run_on_network(
        options(tmp_path, signals=0), None, results, catalogue=Catalogue.load(), work=lambda _running: None
    )  # type: ignore[arg-type]
    assert final.exit_code == 0 and final.verdict == Verdict.PASSES
    # An interrupt once the results are final is counted, not raised: reports and exit code agree.
    os.kill(os.getpid(), signal.SIGINT)
    assert interrupts.received() == 1 and interrupts.pending() and interrupts.holding()


def test_an_interrupt_held_since_the_last_run_ends_the_next_at_once(tmp_path, fresh_interrupts):
    interrupts.hold()
    os.kill(os.getpid(), signal.SIGINT)  # while held: counted only
    assert interrupts.pending()
    with pytest.raises(KeyboardInterrupt):
        run_on_network(
            options(tmp_path, signals=0),
            None,  # type: ignore[arg-type]
            results_with(),
            catalogue=Catalogue.load(),
            work=lambda _running: None,
        )
