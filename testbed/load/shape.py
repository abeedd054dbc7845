"""A load shape from stages: how many users should run at a moment of the run, and how fast
to get there. Locust asks this once a second through its LoadTestShape."""

from __future__ import annotations

from collections.abc import Sequence

from testbed.scenario.load_settings import Stage


def target(stages: Sequence[Stage], elapsed: float, start_users: int = 0) -> tuple[int, float] | None:
    """(users, spawn rate) for `elapsed` seconds into the run; None once the last stage ended.
    Within a stage the user count moves linearly from the previous stage's to this one's."""
    begin, previous = 0.0, start_users
    for stage in stages:
        end = begin + stage.duration
        if elapsed < end:
            progress = (elapsed - begin) / stage.duration
            users = round(previous + (stage.users - previous) * progress)
            # Fast enough to follow the ramp, at least one user a second.
            rate = max(1.0, abs(stage.users - previous) / stage.duration)
            return users, rate
        begin, previous = end, stage.users
    return None
