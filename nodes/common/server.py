"""A node's two HTTPS listeners: uvicorn servers on sockets the caller binds, so that one
process can run one node or many (nodes.common.host) and a failed bind is an error the host
reports for that node alone, not an exit of the whole process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator

import uvicorn
from starlette.types import ASGIApp

from nodes.common.app import NodeApps
from nodes.common.peer import TlsScopeProtocol
from protocols.nodeconfig import NodeConfig, TlsConfig

ASGIWrapper = Callable[[ASGIApp], ASGIApp]
TICK_SECONDS = 1.0  # how often an idle listener refreshes its Date header and looks for a stop


class ListenerClock:
    """One timer for every listener of a process. uvicorn gives each server a loop of its own
    that wakes to refresh the Date header of its answers; a process hosting a thousand
    listeners spent a tenth of a core on those wake-ups alone. Here one task refreshes all."""

    def __init__(self) -> None:
        self._listeners: set[Listener] = set()

    def watch(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def forget(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for listener in list(self._listeners):
                await listener.on_tick(0)  # counter 0: refresh the Date header


class Listener(uvicorn.Server):
    """One uvicorn server. Signals are handled once per process by the host, and an idle
    listener waits for its stop, its Date header kept current by the process's `clock`
    (without one, it wakes once a second to refresh it itself)."""

    def __init__(self, config: uvicorn.Config, *, clock: ListenerClock | None = None):
        super().__init__(config)
        self.clock = clock

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self, *, abrupt: bool = False) -> None:
        """Stop: gracefully, or (`abrupt`) without waiting for open requests or the app's
        shutdown, the nearest a shared process comes to a node being killed."""
        self.should_exit = True
        self.force_exit = self.force_exit or abrupt
        self._exit_requested().set()

    def _exit_requested(self) -> asyncio.Event:
        if not hasattr(self, "_exit_event"):
            self._exit_event = asyncio.Event()
        return self._exit_event

    async def _wait_tasks_to_complete(self) -> None:
        # uvicorn asks each connection to shut down and waits for all to be gone. An idle
        # kept-alive TLS connection closes only once its client answers the close_notify,
        # which a client holding it idle in its pool never does, so every stop took the whole
        # graceful time limit. Idle connections are dropped at once; busy ones finish first.
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if (cycle is None or cycle.response_complete) and transport is not None:
                transport.abort()
        await super()._wait_tasks_to_complete()

    async def main_loop(self) -> None:
        if await self.on_tick(0):  # the first Date header (and a stop asked for during start-up)
            return
        if self.clock is None:
            while not await self.on_tick(0):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK_SECONDS):
                        await self._exit_requested().wait()
            return
        self.clock.watch(self)
        try:
            await self._exit_requested().wait()
        finally:
            self.clock.forget(self)


def listeners(
    config: NodeConfig, apps: NodeApps, *, wrap: ASGIWrapper | None = None, clock: ListenerClock | None = None
) -> list[Listener]:
    """The public and the internal listener of a node. `wrap` puts something around each app
    (the host uses it to tell which node a log line comes from); `clock` is the process's."""
    tag = wrap or (lambda app: app)
    return [
        Listener(_uvicorn_config(config.tls, tag(apps.public), _public_mode(apps)), clock=clock),
        # The internal API issues credentials and signs for subjects: only holders of a
        # certificate from the network CA (the harness, the organisation's other nodes) may call it.
        Listener(_uvicorn_config(config.tls, tag(apps.internal), ssl.CERT_REQUIRED), clock=clock),
    ]


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to the node's address and port (uvicorn starts listening on it);
    raises OSError when the address is taken or not this machine's."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _public_mode(apps: NodeApps) -> ssl.VerifyMode:
    if apps.public_client_certificates == "optional":
        return ssl.CERT_OPTIONAL
    return ssl.CERT_REQUIRED if apps.public_client_certificates else ssl.CERT_NONE


def _uvicorn_config(tls: TlsConfig, app: ASGIApp, client_certificates: ssl.VerifyMode) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        ssl_ca_certs=str(tls.ca),
        ssl_cert_reqs=client_certificates,
        http=TlsScopeProtocol,  # httptools; handlers see the client's certificate (e.g. to bind a signed query to it)
        lifespan="on",
        log_config=None,  # the host routes every node's lines to that node's log
        access_log=True,
        timeout_graceful_shutdown=3,
        # uvicorn closes an idle keep-alive connection after 5 s by default, the very moment a
        # client's pool (httpx: 5 s) may pick it for its next request, which then finds it
        # closed. Under load that race lost requests; idle connections now live as long as
        # nginx keeps them by default, longer than any client here keeps one idle.
        timeout_keep_alive=75,
    )
