"""The harness's HTTP client for a run: it trusts what the run trusts, shows the harness's own
certificate, and reaches nodes whose URLs name a container (docker runtime) at the loopback
port the runtime published for them. Names are mapped on connect only, so TLS still checks the
certificate against the name in the URL."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from testbed.faults.proxy import HARNESS, LinkFaultError, egress_url
from testbed.runtime.state import RunState

ORIGIN_CONNECTIONS = 16  # at most, to one node address at a time (as many as the harness has threads)
KEEPALIVE_SECONDS = 60.0  # a node is asked again after a phase of the start-up; its connection waits


def ssl_context_for(state: RunState, certificate: bool = True) -> ssl.SSLContext:
    """Trust what the run trusts (the network CA and the CAs of implementations under test),
    and show the harness's own certificate to nodes that ask for one (unless `certificate` is
    False: a client that checks a node refuses those without one)."""
    context = ssl.create_default_context(cafile=state.trust_bundle)
    if state.client_cert and certificate:
        context.load_cert_chain(state.client_cert, state.client_key)
    return context


def harness_client(
    state: RunState, timeout: float = 15.0, certificate: bool = True, *, via_proxy: bool = False
) -> httpx.Client:
    """`via_proxy`: open every HTTPS connection through the run's link-fault proxy, as the
    source HARNESS, so that faults on links from the harness to a node (a url: node too) apply."""
    names = {n.plan.host: n.plan.reach_at for n in state.nodes if n.plan.reach_at}
    context = ssl_context_for(state, certificate)
    if via_proxy:
        return _proxied_client(state, context, timeout)
    return httpx.Client(transport=NodeTransport(names, context), timeout=timeout)


def _proxied_client(state: RunState, context: ssl.SSLContext, timeout: float) -> httpx.Client:
    """The proxy resolves node names itself (inside the run's docker network, on the docker
    runtime), so no name needs mapping here."""
    if state.link_proxy is None:
        raise LinkFaultError(f"run {state.run_id} has no link proxy: the harness's links cannot fail")
    tunnelled = httpx.HTTPTransport(verify=context, proxy=egress_url(state.link_proxy.url, HARNESS))
    return httpx.Client(verify=context, timeout=timeout, mounts={"https://": tunnelled})


class _MappedBackend(httpcore.SyncBackend):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return super().connect_tcp(self.names.get(host, host), port, timeout, local_address, socket_options)


class NodeTransport(httpx.BaseTransport):
    """httpx over one small httpcore pool per node address, whose connections go to mapped
    addresses (docker runtime). One pool per address, not one for all: starting a network of a
    thousand nodes asks each several times (health, identity, bootstrap), so a connection to each
    is kept open, and one shared pool would look through all of them on every request."""

    def __init__(self, names: dict[str, str], context: ssl.SSLContext):
        self.names = names
        self.context = context
        self.pools: dict[tuple[bytes, int | None], httpcore.ConnectionPool] = {}
        self._lock = threading.Lock()

    def _pool(self, url: httpx.URL) -> httpcore.ConnectionPool:
        origin = (url.raw_host, url.port)
        with self._lock:
            pool = self.pools.get(origin)
            if pool is None:
                pool = httpcore.ConnectionPool(
                    ssl_context=self.context,
                    network_backend=_MappedBackend(self.names),
                    max_connections=ORIGIN_CONNECTIONS,
                    keepalive_expiry=KEEPALIVE_SECONDS,
                )
                self.pools[origin] = pool
        return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._send(request)
        except httpcore.TimeoutException as exc:
            # httpx's own names for httpcore's errors (ConnectTimeout, ReadTimeout, ...), so
            # callers handle them as they handle any httpx error.
            raise getattr(httpx, type(exc).__name__, httpx.TimeoutException)(str(exc), request=request) from exc
        except httpcore.NetworkError as exc:
            raise getattr(httpx, type(exc).__name__, httpx.NetworkError)(str(exc), request=request) from exc
        except httpcore.ProtocolError as exc:
            raise getattr(httpx, type(exc).__name__, httpx.ProtocolError)(str(exc), request=request) from exc

    def _send(self, request: httpx.Request) -> httpx.Response:
        answer = self._pool(request.url).handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Stream(answer),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        with self._lock:
            pools, self.pools = list(self.pools.values()), {}
        for pool in pools:
            pool.close()


class _Stream(httpx.SyncByteStream):
    def __init__(self, answer: httpcore.Response):
        self.answer = answer

    def __iter__(self) -> Iterator[bytes]:
        stream = self.answer.stream
        assert isinstance(stream, Iterable)  # a sync pool answers with a sync stream
        yield from stream

    def close(self) -> None:
        self.answer.close()
