"""Short-lived server-side state: one-use values (presentation nonces, DPoP proof ids) and
issued access tokens. Kept in memory: it lasts minutes, and losing it on a restart is safe."""

from __future__ import annotations

import time
from typing import Any


class OneUseMemory:
    """Values seen recently, each remembered until the moment it could no longer be
    accepted anyway; after that, the value's own validity check refuses it."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._next_sweep = 0.0

    def first_use(self, value: str, now: float, remember_until: float) -> bool:
        if now >= self._next_sweep:  # forget expired values now and then, not on every call
            self._seen = {v: t for v, t in self._seen.items() if t > now}
            self._next_sweep = now + 5
        if self._seen.get(value, 0.0) > now:
            return False
        self._seen[value] = remember_until
        return True


class ExpiringStore:
    """Records that carry their own `exp` (epoch seconds) and vanish once it has passed."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._next_sweep = 0.0

    def put(self, key: str, record: dict[str, Any]) -> None:
        self._sweep()
        self._records[key] = record

    def get(self, key: str) -> dict[str, Any] | None:
        record = self._records.get(key)
        return record if record is not None and record["exp"] > time.time() else None

    def _sweep(self) -> None:
        now = time.time()
        if now >= self._next_sweep:  # at most once a minute: puts stay cheap
            self._records = {k: r for k, r in self._records.items() if r["exp"] > now}
            self._next_sweep = now + 60
