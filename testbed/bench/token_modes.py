"""The token endpoint in its two revocation modes, side by side in one run.

Default: the issuer answers its status list with `Cache-Control: no-cache`, so the verifier
revalidates the list for every verification (a conditional request, answered 304 while the
list is unchanged) and a revocation counts at once. Cached: the issuer lets verifiers keep its
list for 60 s (`max-age=60`). Both networks are up at once and the modes are measured in
alternating rounds, so that drift on a shared machine falls on both alike; each mode's best
round stands for it. Targets: the default mode at least 0.8 of the cached mode, and at least
1,000 tokens/s.

Each round also counts the CPU time of the two processes that do the work (the verifier and
the issuer it asks), so tokens per CPU-second compare the modes' costs even where other work
on a busy machine takes the server core's time and with it tokens/s."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psutil

from testbed.bench.driver import NAME as PYTHON_DRIVER
from testbed.bench.drivers import invalid
from testbed.network import RunningNetwork

DEFAULT_LABEL = "token endpoint, default: status list revalidated for every verification"
CACHED_LABEL = "token endpoint, status list cached 60 s"
CACHED_SECONDS = 60  # the issuer's status_list_max_age_seconds in the cached mode
TARGET_TOKENS_PER_SECOND = 1000
TARGET_DEFAULT_TO_CACHED = 0.8
SERVER_NODES = ("hospital-trust", "authority-trust")  # the verifier, and the issuer whose list it reads


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes (all their threads) so far."""
    total = 0.0
    for pid in sorted(set(pids)):  # nodes hosted in one process count once
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def with_cpu(measured: dict[str, Any], cpu: float) -> dict[str, Any]:
    """A measurement with the server processes' CPU time and the tokens answered per CPU-second."""
    answered = measured["statuses"].get("2xx", 0)
    per_cpu_second = round(answered / cpu, 1) if cpu > 0 else 0.0
    return {**measured, "server_cpu_seconds": round(cpu, 3), "per_server_cpu_second": per_cpu_second}


def measure(
    networks: Mapping[str, RunningNetwork],
    measure_one: Callable[[RunningNetwork], dict[str, Any]],
    *,
    rounds: int,
    progress: Callable[[str], object],
) -> dict[str, list[dict[str, Any]]]:
    """Every mode (label -> its network) `rounds` times, the modes taking turns."""
    found: dict[str, list[dict[str, Any]]] = {label: [] for label in networks}
    for round_number in range(1, rounds + 1):
        for label, running in networks.items():
            progress(f"· {label}, round {round_number} of {rounds}")
            found[label].append(measure_one(running))
    return found


def best(rounds: list[dict[str, Any]], figure: str = "per_second") -> dict[str, Any]:
    """The round with the highest `figure` among those whose every answer was 2xx (a round with
    other answers stands only where no round was valid, and is then reported invalid)."""
    valid = [m for m in rounds if not invalid(m)]
    return max(valid or rounds, key=lambda m: float(m.get(figure, 0.0)))


def verdict(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Both modes' figures, their ratio and the targets, for results.json and the summary."""
    default, cached = best(rounds[DEFAULT_LABEL]), best(rounds[CACHED_LABEL])
    valid = not invalid(default) and not invalid(cached)
    ratio = default["per_second"] / cached["per_second"] if cached["per_second"] else 0.0
    found = {
        "default_per_second": round(default["per_second"], 1),
        "cached_per_second": round(cached["per_second"], 1),
        "default_to_cached": round(ratio, 3),
        "rounds": {label: [round(m["per_second"], 1) for m in measured] for label, measured in rounds.items()},
        **_per_cpu_second(rounds),
        "targets": {
            "min_default_to_cached": TARGET_DEFAULT_TO_CACHED,
            "min_tokens_per_second": TARGET_TOKENS_PER_SECOND,
        },
        "valid": valid,
    }
    # The Python driver's own ceiling would cap both modes alike: no verdict from its figures.
    judged = PYTHON_DRIVER not in (default["driver"], cached["driver"])
    found["ratio_met"] = (valid and ratio >= TARGET_DEFAULT_TO_CACHED) if judged else None
    found["throughput_met"] = (valid and default["per_second"] >= TARGET_TOKENS_PER_SECOND) if judged else None
    found["target_met"] = (found["ratio_met"] and found["throughput_met"]) if judged else None
    return found


def _per_cpu_second(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    default, cached = (best(rounds[label], "per_server_cpu_second") for label in (DEFAULT_LABEL, CACHED_LABEL))
    by_cpu = (default.get("per_server_cpu_second", 0.0), cached.get("per_server_cpu_second", 0.0))
    return {
        "default_per_cpu_second": by_cpu[0],
        "cached_per_cpu_second": by_cpu[1],
        "default_to_cached_by_cpu": round(by_cpu[0] / by_cpu[1], 3) if by_cpu[1] else 0.0,
    }


def summary_lines(found: dict[str, Any]) -> list[str]:
    """What the bench prints: both modes, their ratio, and each target met or not."""

    def met(flag: bool | None) -> str:
        if flag is None:
            return "[yellow]not judged: the Python driver's ceiling sets the figures[/]"
        return "[green]met[/]" if flag else "[red]NOT met[/]"

    rounds = "; ".join(f"{label}: {figures}" for label, figures in found["rounds"].items())
    invalid_note = "" if found["valid"] else " [red](a mode had no round with only 2xx answers)[/]"
    targets = found["targets"]
    return [
        f"token endpoint: default {found['default_per_second']:.0f} tokens/s, cached {found['cached_per_second']:.0f}"
        f" tokens/s, default/cached {found['default_to_cached']:.2f}{invalid_note}",
        f"target default >= {targets['min_default_to_cached']} x cached: {met(found['ratio_met'])};"
        f" target default >= {targets['min_tokens_per_second']} tokens/s: {met(found['throughput_met'])}",
        f"per CPU-second of verifier and issuer: default {found['default_per_cpu_second']:.0f} tokens,"
        f" cached {found['cached_per_cpu_second']:.0f} tokens, default/cached {found['default_to_cached_by_cpu']:.2f}",
        f"rounds (tokens/s): {rounds}",
    ]
