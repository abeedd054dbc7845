"""One OS process, one event loop, one node or many.

A network of a thousand organisations cannot give every node a Python process of its own
(about 67 MiB each), so the process runtime puts several nodes in one process. Each hosted
node keeps what makes it a node of its own: its address and ports, its certificate, its
storage, its log, and a life of its own. The control listener lets the harness stop, kill,
start, pause and resume one hosted node while its neighbours go on answering.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Literal

import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nodes.common.app import NodeApps
from nodes.common.server import Listener, ListenerClock, bind, listeners
from protocols.nodeconfig import HostConfig, NodeConfig

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PARENT_POLL_SECONDS = 0.5
STOP_TIMEOUT_SECONDS = 10.0
STARTING_AT_ONCE = 4  # nodes of one host built at the same time

# The node whose work the running code does; every log line goes to that node's log.
CURRENT_NODE: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_node", default=None)

Builder = Callable[[NodeConfig], NodeApps]
NodeStatus = Literal["stopped", "starting", "running", "paused", "stopping", "failed"]
Operation = Literal["start", "stop", "kill", "restart", "pause", "resume"]
OPERATIONS: tuple[Operation, ...] = ("start", "stop", "kill", "restart", "pause", "resume")


class NodeLogRouter(logging.Handler):
    """Writes each log record to the log of the node it belongs to (CURRENT_NODE), or to the
    process's standard error when it belongs to none, or to a node without a log file of its
    own (a node alone in its process, whose standard error is its log)."""

    def __init__(self, log_files: dict[str, Path]):
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self._files: dict[str, IO[str]] = {}
        for name, path in log_files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            self._files[name] = path.open("a", encoding="utf-8", buffering=1)  # line-buffered

    def emit(self, record: logging.LogRecord) -> None:
        node = CURRENT_NODE.get()
        stream = self._files.get(node, sys.stderr) if node else sys.stderr
        try:
            stream.write(self.format(record) + "\n")
        except Exception:  # logging must never take a node down
            self.handleError(record)

    def close(self) -> None:
        for stream in self._files.values():
            stream.close()
        super().close()


def route_logs(router: NodeLogRouter) -> None:
    """Every logger of the process, uvicorn's included, writes through the router."""
    root = logging.getLogger()
    root.handlers[:] = [router]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def tagged(name: str) -> Callable[[ASGIApp], ASGIApp]:
    """An ASGI wrapper that marks every request (and the tasks it starts) as this node's work."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def node_app(scope: Scope, receive: Receive, send: Send) -> None:
            CURRENT_NODE.set(name)
            await app(scope, receive, send)

        return node_app

    return wrap


class HostedNode:
    """One node's life inside a host: built afresh on every start, as a restarted process
    would be, from the same configuration and the same storage."""

    def __init__(self, config: NodeConfig, build: Builder, *, clock: ListenerClock):
        self.config = config
        self._clock = clock
        self.status: NodeStatus = "stopped"
        self.problem = ""  # why the last start failed
        self._build = build
        self._listeners: list[Listener] = []
        self._held: list[list[socket.socket]] = []  # while paused: each listener's listening sockets, unused
        self._task: asyncio.Task[None] | None = None
        self._context = contextvars.copy_context()  # where this node's code runs, so its lines go to its log
        self._context.run(CURRENT_NODE.set, self.name)

    @property
    def name(self) -> str:
        return self.config.name

    async def start(self) -> None:
        if self.status in ("starting", "running", "paused"):  # a paused node is resumed, not started
            return
        self.status, self.problem = "starting", ""
        context = self._context
        try:
            # Built on a worker thread: a data station generating its synthetic data takes a
            # while, and the nodes already started go on answering in the meantime.
            apps = await asyncio.get_running_loop().run_in_executor(None, context.run, self._build, self.config)
            sockets = self._bind()
        except Exception as exc:  # a node that cannot start must not take its neighbours down
            self._fail(f"{exc.__class__.__name__}: {exc}")
            return
        self._listeners = listeners(self.config, apps, wrap=tagged(self.name), clock=self._clock)
        self._task = asyncio.get_running_loop().create_task(self._serve(sockets), context=context)
        while not self._task.done() and not all(listener.started for listener in self._listeners):
            await asyncio.sleep(0.01)
        if self.status == "starting":
            self.status = "running"
            self._log(
                logging.INFO,
                "%s serves its public API at %s and its internal API at %s",
                self.name,
                self.config.public_url,
                self.config.internal_url,
            )

    def _bind(self) -> list[socket.socket]:
        sockets: list[socket.socket] = []
        try:
            for port in (self.config.public_port, self.config.internal_port):
                sockets.append(bind(self.config.host, port))
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    async def _serve(self, sockets: list[socket.socket]) -> None:
        pairs = zip(self._listeners, sockets, strict=True)
        await asyncio.gather(*(self._serve_one(listener, sock) for listener, sock in pairs))
        if self.status != "failed":
            self.status = "stopped"

    async def _serve_one(self, listener: Listener, sock: socket.socket) -> None:
        try:
            await listener.serve(sockets=[sock])
        except SystemExit:  # uvicorn exits when the app's start-up fails: this node only
            self._fail("the node's start-up failed (its log says why)")
            for other in self._listeners:
                other.request_exit()
        finally:
            sock.close()

    def _fail(self, problem: str) -> None:
        self.status, self.problem = "failed", problem
        self._log(logging.ERROR, "%s could not start: %s", self.name, problem)

    def _log(self, level: int, message: str, *args: object) -> None:
        """A line in this node's log (whatever context the caller runs in)."""
        self._context.run(logging.getLogger("host").log, level, message, *args)

    def pause(self) -> None:
        """Take no new work, as a stopped process would: nothing accepts connections any more
        (the listening sockets stay open, so the kernel still completes them into the backlog,
        where they wait), and the open connections are not read. Requests already being
        handled are answered; whatever the node does on its own goes on."""
        if self.status != "running":
            return
        self._held = [_stop_accepting(listener) for listener in self._listeners]
        self.status = "paused"
        self._log(logging.WARNING, "%s is paused: it accepts and reads nothing until resumed", self.name)

    async def resume(self) -> None:
        """Accept and read again; the connections that waited meanwhile are served."""
        if self.status != "paused":
            return
        held, self._held = self._held, []
        for listener, sockets in zip(self._listeners, held, strict=True):
            await _accept_again(listener, sockets)
        self.status = "running"
        self._log(logging.INFO, "%s is resumed", self.name)

    async def stop(self, *, abrupt: bool = False) -> None:
        for sockets in self._held:  # a paused node: nothing accepts on these; the stop closes the rest
            for sock in sockets:
                sock.close()
        self._held = []
        if self._task is None or self._task.done():
            self.status = "failed" if self.status == "failed" else "stopped"
            return
        self.status = "stopping"
        for listener in self._listeners:
            listener.request_exit(abrupt=abrupt)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            self._task.cancel()
        self.status = "stopped"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.config.role,
            "status": self.status,
            "problem": self.problem,
            "public_url": self.config.public_url,
            "internal_url": self.config.internal_url,
        }


class NodeHost:
    """The nodes of one process, and what the control listener may do to them."""

    def __init__(self, configs: Iterable[NodeConfig], build: Builder):
        self.clock = ListenerClock()  # runs while the host runs (`_run`)
        self.nodes = {config.name: HostedNode(config, build, clock=self.clock) for config in configs}
        self.stopping = asyncio.Event()

    async def start_all(self) -> None:
        # A few at a time: one node's build waits on its disk (a new database, its first
        # commit) while another's computes, and the nodes already up keep answering.
        room = asyncio.Semaphore(STARTING_AT_ONCE)

        async def start(node: HostedNode) -> None:
            async with room:
                await node.start()

        await asyncio.gather(*(start(node) for node in self.nodes.values()))

    async def stop_all(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes.values()))

    async def apply(self, name: str, operation: Operation) -> HostedNode:
        node = self.nodes[name]
        if operation == "pause":
            node.pause()
        elif operation == "resume":
            await node.resume()
        if operation in ("stop", "kill", "restart"):
            await node.stop(abrupt=operation == "kill")
        if operation in ("start", "restart"):
            await node.start()
        return node


# --- pausing a listener ----------------------------------------------------------------------


def _stop_accepting(listener: Listener) -> list[socket.socket]:
    """Close the listener's servers but keep a duplicate of each listening socket (returned):
    the address stays taken and connections queue in its backlog, accepted by nobody. Reading
    stops on every open connection."""
    kept = [sock.dup() for server in listener.servers for sock in server.sockets]
    for server in listener.servers:
        server.close()
    for connection in list(listener.server_state.connections):
        connection.transport.pause_reading()
    return kept


async def _accept_again(listener: Listener, sockets: list[socket.socket]) -> None:
    """Serve the kept sockets again with the listener's own protocol, state and app (as uvicorn
    starts a server), and read the open connections again (those uvicorn's own flow control
    holds stay held)."""
    config, loop = listener.config, asyncio.get_running_loop()

    def protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=listener.server_state, app_state=listener.lifespan.state, _loop=_loop
        )

    listener.servers = [
        await loop.create_server(protocol, sock=sock, ssl=config.ssl, backlog=config.backlog) for sock in sockets
    ]
    for connection in list(listener.server_state.connections):
        flow = getattr(connection, "flow", None)
        if not connection.transport.is_closing() and not (flow is not None and flow.read_paused):
            connection.transport.resume_reading()


# --- the control listener -------------------------------------------------------------------


def control_app(host: NodeHost) -> Starlette:
    app = Starlette(routes=CONTROL_ROUTES)
    app.state.host = host
    return app


async def list_nodes(request: Request) -> Response:
    host: NodeHost = request.app.state.host
    return JSONResponse({"pid": os.getpid(), "nodes": [node.describe() for node in host.nodes.values()]})


async def operate(request: Request) -> Response:
    host: NodeHost = request.app.state.host
    name, operation = request.path_params["name"], request.path_params["operation"]
    if name not in host.nodes:
        return _problem(404, f"this process hosts no node {name!r}; it hosts {', '.join(sorted(host.nodes))}")
    if operation not in OPERATIONS:
        return _problem(400, f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
    if operation == "pause" and host.nodes[name].status not in ("running", "paused"):
        return _problem(409, f"{name} is {host.nodes[name].status}: only a running node can be paused")
    node = await host.apply(name, operation)
    if operation in ("start", "restart") and node.status != "running":
        return _problem(409, f"{name} did not start: {node.problem}")
    return JSONResponse(node.describe())


def _problem(status: int, detail: str) -> Response:
    return JSONResponse({"status": status, "detail": detail}, status_code=status, media_type="application/problem+json")


CONTROL_ROUTES = [
    Route("/nodes", list_nodes, methods=["GET"]),
    Route("/nodes/{name}/{operation}", operate, methods=["POST"]),
]


# --- running a host -------------------------------------------------------------------------


def run_host(
    configs: list[NodeConfig],
    build: Builder,
    *,
    control: HostConfig | None = None,
    parent_pid: int | None = None,
) -> int:
    """Serve the nodes until SIGTERM or SIGINT (or the harness is gone); exit status 1 when a
    node could not start at first."""
    router = NodeLogRouter({c.name: c.log_file for c in configs if c.log_file is not None})
    route_logs(router)
    # uvloop: the event loop (and its TLS) in compiled code, as uvicorn's standard install runs it.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_run(NodeHost(configs, build), control=control, parent_pid=parent_pid))


async def _run(host: NodeHost, *, control: HostConfig | None, parent_pid: int | None) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, host.stopping.set)
    control_listener = await _start_control(host, control) if control else None
    watchdog = asyncio.create_task(_exit_with_parent(parent_pid, host.stopping))
    clock = asyncio.create_task(host.clock.run())
    await host.start_all()
    failed = [node for node in host.nodes.values() if node.status == "failed"]
    for node in failed:  # the harness shows this process's log when it exits
        print(f"{node.name} could not start: {node.problem}", file=sys.stderr)
    if not failed:  # a network that cannot start whole does not start: the harness sees the exit
        await host.stopping.wait()
    watchdog.cancel()
    await host.stop_all()
    clock.cancel()
    if control_listener is not None:
        control_listener.request_exit()
        await control_listener.serve_task
    return 1 if failed else 0


class _ControlListener(Listener):
    serve_task: asyncio.Task[None]


async def _start_control(host: NodeHost, control: HostConfig) -> _ControlListener:
    config = uvicorn.Config(
        control_app(host),
        ssl_certfile=str(control.tls.cert),
        ssl_keyfile=str(control.tls.key),
        ssl_ca_certs=str(control.tls.ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        log_config=None,
        # True, as for the nodes: uvicorn's access_log=False switches the access logger off for
        # the whole process. The control requests go to the process's own log.
        access_log=True,
        lifespan="off",
    )
    listener = _ControlListener(config)
    sock = bind(control.control_host, control.control_port)
    listener.serve_task = asyncio.create_task(listener.serve(sockets=[sock]))
    while not listener.started and not listener.serve_task.done():
        await asyncio.sleep(0.01)
    return listener


async def _exit_with_parent(parent_pid: int | None, stopping: asyncio.Event) -> None:
    """Nodes started for one harness run die with that run, even if the harness is killed."""
    if parent_pid is None:
        return
    while not stopping.is_set():
        await asyncio.sleep(PARENT_POLL_SECONDS)
        if not _alive(parent_pid):
            logging.getLogger("host").warning("harness process %s is gone; stopping", parent_pid)
            stopping.set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
