"""Running a load driver on the driver core and reading what it measured.

`oha` (a Rust crate, built by `cargo install`) is the driver for endpoints behind mutual TLS:
it presents a client certificate, which wrk cannot. Without it the Python driver stands in,
and its own ceiling then limits the figures; every result names the driver that produced it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.bench import BenchError
from testbed.bench.servers import DRIVER_CORE, on_core


@dataclass(frozen=True)
class Load:
    url: str
    seconds: float
    connections: int


@dataclass(frozen=True)
class ClientTls:
    ca: str  # the bundle the server's certificate must chain to
    cert: str  # the client certificate shown to the server (mutual TLS)
    key: str


def drive_one_body(load: Load, body: bytes, content_type: str, *, tls: ClientTls, scratch: Path) -> dict[str, Any]:
    """Post the same body for `load.seconds` over mutual TLS, with oha when the machine has it."""
    body_file = scratch / "body"
    body_file.write_bytes(body)
    oha = find_oha()
    if oha is None:
        tls_options = ["--ca", tls.ca, "--cert", tls.cert, "--key", tls.key]
        return run_python_driver(load, ["--body", str(body_file), "--content-type", content_type, *tls_options])
    command = [oha, "--no-tui", "--output-format", "json", "-z", f"{round(load.seconds * 1000)}ms"]
    # -w: requests under way at the deadline are finished, not counted as errors.
    command += ["-w", "-c", str(load.connections), "-m", "POST", "-T", content_type, "-D", str(body_file)]
    command += ["--cacert", tls.ca, "--cert", tls.cert, "--key", tls.key, load.url]
    result = parse_oha(run_pinned(command, load.seconds))
    result["driver"] = _version(oha)
    return result


def find_oha() -> str | None:
    """On PATH, or where `make bench` installs it: the bin folder of this interpreter's venv."""
    return shutil.which("oha") or shutil.which("oha", path=str(Path(sys.executable).parent))


def parse_oha(output: str) -> dict[str, Any]:
    try:
        report = json.loads(output)
        seconds = float(report["summary"]["total"])
        statuses = {int(code): count for code, count in report["statusCodeDistribution"].items()}
        errors: dict[str, int] = report["errorDistribution"]
        percentiles = report["latencyPercentiles"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"oha's output could not be read ({exc}): {output[:500]}") from None
    answered = sum(statuses.values())
    if not answered or not seconds:
        raise BenchError(f"oha measured nothing: {errors or output[:500]}")
    succeeded = sum(count for code, count in statuses.items() if 200 <= code < 300)
    return {
        "driver": "oha",
        "requests": answered + sum(errors.values()),
        "seconds": round(seconds, 3),
        # Only answered requests count: a refusal is cheap and would flatter the figure.
        "per_second": round(succeeded / seconds, 1),
        "statuses": {"2xx": succeeded, "other": answered - succeeded, "socket errors": sum(errors.values())},
        "p50_ms": _milliseconds(percentiles.get("p50")),
        "p99_ms": _milliseconds(percentiles.get("p99")),
        "bytes": int(report["summary"].get("totalData", 0)),  # answer bodies only
    }


def invalid(measured: dict[str, Any]) -> str:
    """Why a measurement does not count: answers other than 2xx, or (closed question)
    answers other than Permit. Empty when it counts."""
    if any(kind != "2xx" and count for kind, count in measured["statuses"].items()):
        return f"not every request was answered 2xx: {measured['statuses']}"
    if not measured.get("answers", {}).get("all_permit", True):
        return "not every answer was a Permit"
    return ""


def run_python_driver(load: Load, options: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "testbed.bench.driver", "--url", load.url]
    command += ["--connections", str(load.connections), "--seconds", str(load.seconds), *options]
    try:
        answer: dict[str, Any] = json.loads(run_pinned(command, load.seconds))
        return answer
    except ValueError as exc:
        raise BenchError(f"the Python driver's output could not be read: {exc}") from None


def run_pinned(command: list[str], seconds: float) -> str:
    """Run a driver on the driver core; its standard output, or a BenchError that says why not."""
    driver = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=on_core(DRIVER_CORE),
    )
    try:
        output, errors = driver.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        driver.kill()
        driver.communicate()
        raise BenchError(f"{Path(command[0]).name} did not finish in {seconds + 120:.0f} s") from None
    if driver.returncode != 0:
        said = (errors or output).strip()[-2000:]
        raise BenchError(f"{Path(command[0]).name} failed (exit {driver.returncode}): {said}")
    return output


def _version(executable: str) -> str:
    try:
        said = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return Path(executable).name
    return said.strip() or Path(executable).name


def _milliseconds(seconds: float | None) -> float:
    return round(seconds * 1000, 2) if seconds is not None else 0.0


def parse_wrk(output: str) -> dict[str, Any]:
    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else 0.0

    def milliseconds(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if not match:
            return 0.0
        return round(float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)], 2)

    requests = int(number(r"(\d+) requests in"))
    seconds = number(r"requests in ([\d.]+)s")
    if not requests or not seconds:
        raise BenchError(f"wrk measured nothing:\n{output}")
    refused = int(number(r"Non-2xx or 3xx responses: (\d+)"))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    succeeded = requests - refused
    return {
        "driver": "wrk",
        "requests": requests,
        # Only answered requests count: a refusal is cheap and would flatter the figure.
        "per_second": round(succeeded / seconds, 1),
        "statuses": {"2xx": succeeded, "other": refused, "socket errors": errors},
        "p50_ms": milliseconds("50"),
        "p99_ms": milliseconds("99"),
    }
