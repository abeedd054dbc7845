"""One-use values: presentation nonces and DPoP proof ids may each be accepted once."""

from __future__ import annotations


class OneUseMemory:
    """Values seen recently, each remembered until the moment it could no longer be
    accepted anyway; after that, the value's own validity check refuses it."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_use(self, value: str, now: float, remember_until: float) -> bool:
        self._seen = {v: t for v, t in self._seen.items() if t > now}
        if value in self._seen:
            return False
        self._seen[value] = remember_until
        return True
