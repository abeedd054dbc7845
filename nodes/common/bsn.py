"""The Dutch citizen service number (BSN): nine digits that pass the eleven-test."""

from __future__ import annotations

import random

_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def is_valid_bsn(value: str) -> bool:
    if len(value) != 9 or not value.isdigit() or value == "000000000":
        return False
    return sum(int(d) * w for d, w in zip(value, _WEIGHTS, strict=True)) % 11 == 0


def random_bsn(rng: random.Random) -> str:
    """A valid BSN drawn from `rng`: eight random digits, then the check digit if one fits."""
    while True:
        head = f"{rng.randrange(10_000_000, 100_000_000):08d}"
        remainder = sum(int(d) * w for d, w in zip(head, _WEIGHTS[:8], strict=True)) % 11
        if remainder < 10:  # the last weight is -1: the check digit equals the remainder
            return head + str(remainder)
