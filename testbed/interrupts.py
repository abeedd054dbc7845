"""How a run takes an interrupt (Ctrl-C's SIGINT, or SIGTERM): once, where its work is.

The first interrupt ends the work in progress (a KeyboardInterrupt where the run is); every
later one, and any that arrives while teardown runs or once the run's results are final, is
only counted: a second Ctrl-C must not leave nodes running, and reports written from final
results must agree with the exit code the process ends with."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

INTERRUPTED = 130  # the shell's convention for a process ended by SIGINT
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _State:
    received: int = 0  # interrupts so far
    delivered: bool = False  # the one KeyboardInterrupt has been raised
    held: int = 0  # how many sections (teardown, final results) hold interrupts now
    installed: bool = False  # our handler serves SIGINT and SIGTERM for the whole process


_state = _State()


def install() -> None:
    """Serve SIGINT and SIGTERM for the rest of the process (the CLI does, first thing)."""
    for sig in SIGNALS:
        signal.signal(sig, _handle)
    _state.installed = True


def _handle(_signum: int, _frame: FrameType | None) -> None:
    _state.received += 1
    if not _state.delivered and not _state.held:
        _state.delivered = True
        raise KeyboardInterrupt


def received() -> int:
    """How many interrupts the process has had (a run compares counts before and after)."""
    return _state.received


def pending() -> bool:
    """An interrupt came, but while held, so nothing has been ended by it."""
    return _state.received > 0 and not _state.delivered


def holding() -> bool:
    return _state.held > 0


@contextlib.contextmanager
def held() -> Iterator[None]:
    """A section no interrupt cuts short (teardown): interrupts are counted meanwhile. Without
    the CLI's handler (a library caller), ours serves the two signals for the section only."""
    own = not _state.installed and threading.current_thread() is threading.main_thread()
    _state.held += 1  # before the handler: it must never raise inside the section
    previous = {sig: signal.signal(sig, _handle) for sig in SIGNALS} if own else {}
    try:
        yield
    finally:
        _state.held -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def hold() -> None:
    """From here the run's results are final: interrupts are counted, not raised, until
    `resume` (the next run of the process) or the end of the process."""
    _state.held += 1


def resume() -> None:
    """A run begins: interrupts end it again; one that came while held ends it at once."""
    _state.held = max(0, _state.held - 1)
    if pending() and not _state.held:
        _state.delivered = True
        raise KeyboardInterrupt
