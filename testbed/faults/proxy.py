"""Link faults: a small HTTP CONNECT proxy that every node's outbound HTTPS connections go
through, so that the harness can cut, slow down or lose the link from one node to another.

A node is told the proxy in its configuration (`NodeConfig.egress_proxy`, a URL whose user part
names the node) and opens each connection to a peer as a CONNECT tunnel through it. TLS stays
end to end between the two nodes; URLs and certificates are the network's own. The proxy
knows, per link (the node that opens a connection, the node it connects to), what is wrong:

- cut: a new tunnel is refused (502) and the link's open tunnels are closed; with `stall`, a
  new tunnel is never answered (the caller's own timeout decides, as with dropped packets);
- delay: every chunk, either way, waits the given milliseconds before it is passed on (a
  connection's set-up once more);
- loss: each connection of the link, open or new, is lost with the given probability (refused
  or closed; with `stall`, left unanswered); a kept-alive connection is drawn once, not per request;
- heal: the link is open again; tunnels that survived it keep working.

It forwards to the run's nodes only (and, on the process runtime, to loopback addresses);
anything else is refused, as is everything that is not a well-formed CONNECT.

It runs in a process of its own (`python -m testbed.faults.proxy --config proxy.json`), its
faults set over a control listener that asks for a certificate from the network CA
(testbed.faults.links is the harness's side), or on an event loop in a thread of the caller
(`ProxyThread`). Both are steered through the methods of `LinkControl`."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import ipaddress
import json
import logging
import os
import random
import signal
import socket
import ssl
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols.nodeconfig import TlsConfig
from testbed.errors import TestbedError

HARNESS = "_harness"  # the source name of the harness's own connections (no node name starts with "_")
MAX_HEAD_BYTES = 8 * 1024  # a CONNECT request is one line and a header or two
HEAD_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10.0
CHUNK_BYTES = 64 * 1024
QUEUED_CHUNKS = 64  # per direction of a delayed tunnel: beyond this its reader waits for its writer
CONTROL_LINE_BYTES = 64 * 1024
PARENT_POLL_SECONDS = 1.0
MAX_DELAY_MS = 600_000

log = logging.getLogger("link-proxy")
T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class LinkFaultError(TestbedError):
    """A link fault that cannot be set (an unknown node, a proxy that does not answer)."""


@dataclass(frozen=True)
class LinkFault:
    cut: bool = False
    delay_ms: int = 0
    loss: float = 0.0  # probability that a connection of the link is lost
    stall: bool = False  # a refused or lost connection is left unanswered rather than refused


OPEN = LinkFault()


class LinkOperation(BaseModel):
    """One change to the links: what the control listener takes, one JSON object a line."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["cut", "heal", "delay", "lose", "clear", "show"]
    source: str | None = None  # the node that opens the connections (HARNESS: the harness)
    target: str | None = None  # the node they go to
    one_way: bool = False  # only connections `source` opens to `target` (default: both ways)
    stall: bool = False  # cut, lose: leave connections unanswered instead of refusing them
    ms: int = Field(default=0, ge=0, le=MAX_DELAY_MS)  # delay
    ratio: float = Field(default=0.0, ge=0.0, le=1.0)  # lose


class ProxyConfig(BaseModel):
    """What the proxy is told when it starts (JSON, written by the runtime)."""

    model_config = ConfigDict(extra="forbid")

    listen_host: str = "127.0.0.1"
    proxy_port: int = 0  # 0: any free port (or the listening socket the runtime hands over)
    control_port: int = 0
    nodes: dict[str, list[str]]  # every node of the run -> its endpoints, "host:port" (public, internal)
    allow_loopback: bool = True  # also forward to loopback addresses of no node (process runtime)
    tls: TlsConfig | None = None  # the control listener's certificate and CA (None: no control listener)
    parent_pid: int | None = None  # exit when this process is gone (harness-owned runs)
    seed: str = ""  # which connections a lossy link loses, the same in every run with one seed


class LinkControl(ABC):
    """The faults a step can set on links. `a` and `b` are node names (`a` may be HARNESS);
    by default a fault holds both ways, with `one_way` only for connections `a` opens to `b`.
    Each call returns the links that are not open, as `show` does."""

    @abstractmethod
    def apply(self, operation: LinkOperation) -> dict[str, Any]: ...

    def cut(self, a: str, b: str, *, one_way: bool = False, stall: bool = False) -> dict[str, Any]:
        return self.apply(_operation(op="cut", source=a, target=b, one_way=one_way, stall=stall))

    def heal(self, a: str, b: str, *, one_way: bool = False) -> dict[str, Any]:
        return self.apply(_operation(op="heal", source=a, target=b, one_way=one_way))

    def delay(self, a: str, b: str, ms: int, *, one_way: bool = False) -> dict[str, Any]:
        return self.apply(_operation(op="delay", source=a, target=b, ms=ms, one_way=one_way))

    def lose(self, a: str, b: str, ratio: float, *, one_way: bool = False, stall: bool = False) -> dict[str, Any]:
        return self.apply(_operation(op="lose", source=a, target=b, ratio=ratio, one_way=one_way, stall=stall))

    def clear(self) -> dict[str, Any]:
        return self.apply(_operation(op="clear"))

    def show(self) -> dict[str, Any]:
        return self.apply(_operation(op="show"))


def _operation(**fields: Any) -> LinkOperation:
    try:
        return LinkOperation(**fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"]))
        raise LinkFaultError(f"link fault {fields.get('op')!r}: {where}: {problem['msg']}") from None


def egress_url(proxy_url: str, source: str) -> str:
    """The proxy URL a node (or the harness, as HARNESS) is told: its name as the URL's user,
    which clients send in a Proxy-Authorization header with each CONNECT."""
    parts = urlsplit(proxy_url)
    return f"{parts.scheme}://{quote(source, safe='')}@{parts.netloc}"


class Refusal(Exception):
    """An answer to a connection that is not to be tunnelled."""

    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


@dataclass(frozen=True)
class ConnectRequest:
    source: str | None  # None: a client that did not say who it is (no fault applies to it)
    host: str
    port: int
    target: str | None  # the node at host:port; None for a loopback address of no node

    @property
    def link(self) -> tuple[str | None, str | None]:
        return (self.source, self.target)


@dataclass(eq=False)
class Tunnel:
    link: tuple[str | None, str | None]
    writers: list[asyncio.StreamWriter]
    stalled: bool = False

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()


class LinkProxy:
    """The proxy on the running event loop: its listeners, the faults of every link and the
    tunnels open now."""

    def __init__(self, config: ProxyConfig):
        self.config = config
        self.endpoints = {_endpoint(e): name for name, endpoints in config.nodes.items() for e in endpoints}
        self.faults: dict[tuple[str | None, str | None], LinkFault] = {}
        self.tunnels: set[Tunnel] = set()
        self.random = random.Random(config.seed)
        self.servers: list[asyncio.Server] = []
        # The event loop holds its tasks weakly, and a stream's protocol lets go of its handler
        # once the connection is lost: a handler still relaying the other way is kept here.
        self.handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(
        self, *, proxy_sock: socket.socket | None = None, control_sock: socket.socket | None = None
    ) -> None:
        """Listen (on the sockets given, or on the configured host and ports)."""
        await self._listen(self._serve, proxy_sock, self.config.proxy_port)
        if self.config.tls is not None:
            context = _control_context(self.config.tls)
            await self._listen(
                self._serve_control, control_sock, self.config.control_port, ssl=context, limit=CONTROL_LINE_BYTES
            )

    async def _listen(self, handler: Handler, sock: socket.socket | None, port: int, **options: Any) -> None:
        if sock is not None:
            server = await asyncio.start_server(handler, sock=sock, **options)
        else:
            server = await asyncio.start_server(handler, self.config.listen_host, port, **options)
        self.servers.append(server)

    @property
    def proxy_port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1])

    @property
    def control_port(self) -> int:
        return int(self.servers[1].sockets[0].getsockname()[1])

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for tunnel in list(self.tunnels):
            tunnel.abort()
        for writer in self.handlers.values():  # every connection ends: its handler sees the end
            writer.transport.abort()
        if self.handlers:
            await asyncio.wait(list(self.handlers), timeout=CONNECT_TIMEOUT_SECONDS)
        for server in self.servers:
            await server.wait_closed()

    def fault_of(self, link: tuple[str | None, str | None]) -> LinkFault:
        return self.faults.get(link, OPEN)

    # --- faults -------------------------------------------------------------------------------
    def apply(self, operation: LinkOperation) -> dict[str, Any]:
        """Change the links as `operation` says (on the event loop's thread); raises
        LinkFaultError for a node the run does not have."""
        if operation.op == "clear":
            self.faults.clear()
            self._abort(lambda tunnel: tunnel.stalled)
        elif operation.op != "show":
            for link in self._links_of(operation):
                self._change(link, operation)
            log.info("%s", operation.model_dump_json(exclude_defaults=True))
        return self.show()

    def show(self) -> dict[str, Any]:
        links = [
            {"from": source, "to": target, **vars(fault)}
            for (source, target), fault in sorted(self.faults.items(), key=lambda item: str(item[0]))
        ]
        return {"links": links, "tunnels": len(self.tunnels)}

    def _links_of(self, operation: LinkOperation) -> list[tuple[str | None, str | None]]:
        known = set(self.config.nodes)
        for role, name in (("from", operation.source), ("to", operation.target)):
            if name is None:
                raise LinkFaultError(f"link fault {operation.op!r}: no node given for its {role!r} end")
            if name not in known and not (role == "from" and name == HARNESS):
                raise LinkFaultError(
                    f"link fault {operation.op!r}: no node {name!r} in this run (nodes: {', '.join(sorted(known))})"
                )
        if operation.source == operation.target:
            raise LinkFaultError(f"link fault {operation.op!r}: {operation.source!r} to itself is no link")
        forward = (operation.source, operation.target)
        if operation.one_way or operation.source == HARNESS:  # nothing connects to the harness
            return [forward]
        return [forward, (operation.target, operation.source)]

    def _change(self, link: tuple[str | None, str | None], operation: LinkOperation) -> None:
        fault = self.fault_of(link)
        if operation.op == "cut":
            fault = replace(fault, cut=True, stall=operation.stall)
            self._abort(lambda tunnel: tunnel.link == link)
        elif operation.op == "delay":
            fault = replace(fault, delay_ms=operation.ms)
        elif operation.op == "lose":
            fault = replace(fault, loss=operation.ratio, stall=operation.stall)
            self._abort(lambda tunnel: tunnel.link == link and self.random.random() < operation.ratio)
        else:  # heal: connections left unanswered are let go; the caller tries again
            fault = OPEN
            self._abort(lambda tunnel: tunnel.link == link and tunnel.stalled)
        if fault == OPEN:
            self.faults.pop(link, None)
        else:
            self.faults[link] = fault

    def _abort(self, which: Callable[[Tunnel], bool]) -> None:
        for tunnel in [t for t in self.tunnels if which(t)]:
            tunnel.abort()
            self.tunnels.discard(tunnel)

    # --- tunnels ------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self.handlers[handler] = writer
        try:
            request = self._parse_head(await _read_head(reader))
            await self._tunnel(request, reader, writer)
        except Refusal as refusal:
            with contextlib.suppress(ConnectionError, OSError):
                await _refuse(writer, refusal)
        except (ConnectionError, OSError):
            pass  # either side went away: nothing to answer
        finally:
            self.handlers.pop(handler, None)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _parse_head(self, head: bytes) -> ConnectRequest:
        try:
            lines = head.decode("ascii").split("\r\n")
        except UnicodeDecodeError:
            raise Refusal(400, "Bad Request", "the request is not HTTP (its head is not ASCII)") from None
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise Refusal(400, "Bad Request", "the request line is not METHOD TARGET HTTP/1.x")
        method, target, _ = parts
        if method != "CONNECT":
            raise Refusal(405, "Method Not Allowed", f"{method[:20]!r}: this proxy only tunnels (CONNECT host:port)")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if line and not colon:
                raise Refusal(400, "Bad Request", "a header line without a colon")
            headers[name.strip().lower()] = value.strip()
        host, port = _split_target(target)
        return ConnectRequest(
            source=self._source(headers.get("proxy-authorization")),
            host=host,
            port=port,
            target=self._target(host, port),
        )

    def _source(self, authorization: str | None) -> str | None:
        """The node named in Basic proxy credentials (the user part of its proxy URL)."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        try:
            user = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            user = None
        if scheme.lower() != "basic" or user is None:
            raise Refusal(407, "Proxy Authentication Required", "name the source node as the user of Basic credentials")
        if user != HARNESS and user not in self.config.nodes:
            raise Refusal(407, "Proxy Authentication Required", f"{user[:60]!r} is not a node of this run")
        return user

    def _target(self, host: str, port: int) -> str | None:
        name = self.endpoints.get(_endpoint(f"{host}:{port}"))
        if name is not None:
            return name
        if self.config.allow_loopback and _is_loopback(host):
            return None
        raise Refusal(403, "Forbidden", f"{host[:100]}:{port} is not a node of this run; nothing else is forwarded to")

    async def _tunnel(
        self, request: ConnectRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        fault = self.fault_of(request.link)
        lost = fault.loss > 0 and self.random.random() < fault.loss
        if fault.cut or lost:
            if fault.stall:
                await self._hold(Tunnel(request.link, [writer], stalled=True), reader)
                return
            what = "cut" if fault.cut else "losing connections"
            raise Refusal(502, "Link Fault", f"the link {request.source} -> {request.target} is {what} (testbed fault)")
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(request.host, request.port), CONNECT_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError) as exc:
            raise Refusal(502, "Bad Gateway", f"{request.host}:{request.port} does not answer: {exc}") from None
        tunnel = Tunnel(request.link, [writer, upstream_writer])
        self.tunnels.add(tunnel)
        try:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await asyncio.gather(
                self._pump(tunnel, reader, upstream_writer), self._pump(tunnel, upstream_reader, writer)
            )
        finally:
            self.tunnels.discard(tunnel)
            tunnel.abort()

    async def _hold(self, tunnel: Tunnel, reader: asyncio.StreamReader) -> None:
        """A connection that gets no answer: whatever it sends is dropped until it gives up or
        the link heals (then it is closed, and the caller tries again)."""
        self.tunnels.add(tunnel)
        try:
            while await reader.read(CHUNK_BYTES):
                pass
        finally:
            self.tunnels.discard(tunnel)

    async def _pump(self, tunnel: Tunnel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One direction of a tunnel. While the link has no delay, each chunk is written as it
        comes. Once it has one, chunks go through a queue: each is due `delay` after it was read
        (the delay as it is then) and a sender passes it on when due, in order (latency, not a
        slower stream); the tunnel keeps the queue from then on, so that order holds."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] | None = None
        sender: asyncio.Task[None] | None = None
        try:
            while data := await reader.read(CHUNK_BYTES):
                delay = self.fault_of(tunnel.link).delay_ms / 1000
                if queue is None and not delay:
                    writer.write(data)
                    await writer.drain()
                    continue
                if queue is None:
                    queue = asyncio.Queue(QUEUED_CHUNKS)
                    sender = asyncio.create_task(_send(queue, writer, tunnel))
                await queue.put((loop.time() + delay, data))
            if queue is None or sender is None:
                _end_stream(writer)
            else:
                await queue.put((loop.time(), b""))  # the end: passed on as an end of stream, when due
                await sender
        except (ConnectionError, OSError):
            tunnel.abort()
        finally:
            if sender is not None:
                sender.cancel()

    # --- control ------------------------------------------------------------------------------
    async def _serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One JSON LinkOperation a line in, one JSON answer a line out: the links after the
        change, or {"error": ...}."""
        try:
            while line := await reader.readline():
                writer.write(json.dumps(self._control(line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError, ValueError):
            pass  # a line over the limit, or a client gone: the connection ends
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _control(self, line: bytes) -> dict[str, Any]:
        try:
            return self.apply(LinkOperation.model_validate_json(line))
        except ValidationError as exc:
            return {"error": f"not a link operation: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}"}
        except LinkFaultError as exc:
            return {"error": str(exc)}


async def _send(queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter, tunnel: Tunnel) -> None:
    """Write each queued chunk when it is due; after a failed write the tunnel is closed and
    the rest is dropped (but still taken, so the reader never waits on a full queue)."""
    loop = asyncio.get_running_loop()
    failed = False
    while True:
        due, data = await queue.get()
        if failed:
            if not data:
                return
            continue
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        try:
            if not data:
                _end_stream(writer)
                return
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError, RuntimeError):
            failed = True
            tunnel.abort()


def _end_stream(writer: asyncio.StreamWriter) -> None:
    """Pass an end of stream on (the other way may still be talking)."""
    if writer.can_write_eof() and not writer.transport.is_closing():
        writer.write_eof()


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
    except asyncio.LimitOverrunError:
        raise _too_large() from None
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ConnectionResetError("closed before a request") from None
        raise Refusal(400, "Bad Request", "the request ended before its head did") from None
    except TimeoutError:
        raise Refusal(408, "Request Timeout", f"no request head within {HEAD_TIMEOUT_SECONDS:.0f} s") from None
    if len(head) > MAX_HEAD_BYTES:
        raise _too_large()
    return head[:-4]


def _too_large() -> Refusal:
    return Refusal(431, "Request Header Fields Too Large", f"a request head is at most {MAX_HEAD_BYTES} bytes")


async def _refuse(writer: asyncio.StreamWriter, refusal: Refusal) -> None:
    body = (refusal.detail + "\n").encode()
    writer.write(
        f"HTTP/1.1 {refusal.status} {refusal.reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


def _split_target(target: str) -> tuple[str, int]:
    """`host:port` (an IPv6 host in brackets) of a CONNECT request."""
    host, colon, port = target.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Refusal(400, "Bad Request", f"{target[:100]!r} is not host:port")
    return host.lower(), int(port)


def _endpoint(host_port: str) -> str:
    """One spelling of an endpoint, whatever the case of its host."""
    host, _, port = host_port.rpartition(":")
    return f"{host.strip('[]').lower()}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _control_context(tls: TlsConfig) -> ssl.SSLContext:
    """The control listener shows the proxy's certificate and takes only clients with one from
    the network CA (the harness, as for every internal API)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


# --- the proxy in a thread of this process ---------------------------------------------------


class ProxyThread(LinkControl):
    """The proxy on an event loop in a thread of its own (tests, or a caller that keeps the
    proxy to itself): `with ProxyThread(config) as proxy: proxy.cut(a, b)`."""

    def __init__(self, config: ProxyConfig):
        self.proxy = LinkProxy(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="link-proxy", daemon=True)

    def __enter__(self) -> ProxyThread:
        self.thread.start()
        try:
            self._call(self.proxy.start())
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            self._call(self.proxy.close())
        self._stop()

    @property
    def url(self) -> str:
        return f"http://{self.proxy.config.listen_host}:{self.proxy.proxy_port}"

    def apply(self, operation: LinkOperation) -> dict[str, Any]:
        async def on_loop() -> dict[str, Any]:
            return self.proxy.apply(operation)

        return self._call(on_loop())

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def _stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


# --- the proxy as a process of its own -------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.faults.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the proxy's configuration (JSON, ProxyConfig)")
    parser.add_argument("--proxy-fd", type=int, help="a listening socket for the proxy, handed over by the runtime")
    parser.add_argument("--control-fd", type=int, help="a listening socket for the control listener")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = ProxyConfig.model_validate_json(args.config.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        print(f"link proxy: cannot read its configuration {args.config}: {exc}", file=sys.stderr)
        return 2
    sockets = [socket.socket(fileno=fd) if fd is not None else None for fd in (args.proxy_fd, args.control_fd)]
    with asyncio.Runner(loop_factory=_fast_loop()) as runner:
        return runner.run(_serve(config, sockets[0], sockets[1]))


async def _serve(config: ProxyConfig, proxy_sock: socket.socket | None, control_sock: socket.socket | None) -> int:
    proxy = LinkProxy(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await proxy.start(proxy_sock=proxy_sock, control_sock=control_sock)
    log.info("listening on port %s (control on port %s)", proxy.proxy_port, proxy.control_port if config.tls else "-")
    watchdog = asyncio.create_task(_exit_with_parent(config.parent_pid, stopping))
    await stopping.wait()
    watchdog.cancel()
    await proxy.close()
    return 0


async def _exit_with_parent(parent_pid: int | None, stopping: asyncio.Event) -> None:
    """A proxy started for one harness run ends with that run, even if the harness is killed."""
    if parent_pid is None:
        return
    while not stopping.is_set():
        await asyncio.sleep(PARENT_POLL_SECONDS)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            log.warning("harness process %s is gone; stopping", parent_pid)
            stopping.set()
        except PermissionError:
            pass


def _fast_loop() -> Any:
    """uvloop's event loop where it is installed (the nodes run on it too), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
