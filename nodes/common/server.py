"""Run a node: both listeners over HTTPS in one event loop, until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
from collections.abc import Iterator

import uvicorn
import uvloop
from starlette.applications import Starlette

from nodes.common.app import NodeApps
from nodes.common.peer import TlsScopeProtocol
from protocols.nodeconfig import NodeConfig

PARENT_POLL_SECONDS = 0.5
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# One line per event with a timestamp, so a node's log can be read next to a report.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": LOG_FORMAT}},
    "handlers": {"stream": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "uvicorn": {"handlers": ["stream"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["stream"], "level": "INFO", "propagate": False},
    },
}


class _QuietServer(uvicorn.Server):
    """Signals are handled once for both listeners, by `serve` below."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve(config: NodeConfig, apps: NodeApps) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    servers = [
        _QuietServer(_uvicorn_config(config, apps.public, config.public_port, _public_mode(apps))),
        # The internal API issues credentials and signs for subjects: only holders of a
        # certificate from the network CA (the harness, the organisation's other nodes) may call it.
        _QuietServer(_uvicorn_config(config, apps.internal, config.internal_port, ssl.CERT_REQUIRED)),
    ]
    # uvloop: the event loop (and its TLS) in compiled code, as uvicorn's standard install runs it.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve_all(config, servers))


def _public_mode(apps: NodeApps) -> ssl.VerifyMode:
    if apps.public_client_certificates == "optional":
        return ssl.CERT_OPTIONAL
    return ssl.CERT_REQUIRED if apps.public_client_certificates else ssl.CERT_NONE


def _uvicorn_config(
    config: NodeConfig, app: Starlette, port: int, client_certificates: ssl.VerifyMode
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=config.host,
        port=port,
        ssl_certfile=str(config.tls.cert),
        ssl_keyfile=str(config.tls.key),
        ssl_ca_certs=str(config.tls.ca),
        ssl_cert_reqs=client_certificates,
        http=TlsScopeProtocol,  # httptools; handlers see the client's certificate (e.g. to bind a signed query to it)
        log_level="info",
        log_config=LOG_CONFIG,
        access_log=True,
        timeout_graceful_shutdown=3,
        # uvicorn closes an idle keep-alive connection after 5 s by default, the very moment a
        # client's pool (httpx: 5 s) may pick it for its next request, which then finds it
        # closed. Under load that race lost requests; idle connections now live as long as
        # nginx keeps them by default, longer than any client here keeps one idle.
        timeout_keep_alive=75,
    )


async def _serve_all(config: NodeConfig, servers: list[_QuietServer]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    watchdog = asyncio.create_task(_exit_with_parent(config.parent_pid, stop))
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        watchdog.cancel()
    if any(not server.started for server in servers):
        raise SystemExit(1)  # a listener could not bind: say so through the exit status


async def _exit_with_parent(parent_pid: int | None, stop: object) -> None:
    """A node started for one harness run dies with that run, even if the harness is killed."""
    if parent_pid is None:
        return
    while True:
        await asyncio.sleep(PARENT_POLL_SECONDS)
        if not _alive(parent_pid):
            logging.getLogger("node").warning("harness process %s is gone; stopping", parent_pid)
            stop()  # type: ignore[operator]
            return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
