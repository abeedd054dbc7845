"""How the engine's requests travel. The engine makes an `Outgoing` request (URL, headers and
body final) and a `Transport` sends it and hands back a `Reply`. A conformance run sends with
httpx (`HttpxTransport`); a load run with each simulated user's Locust session
(testbed/load/locustfile.py). So one engine replays a step the same way in both."""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

CHARSET = re.compile(r"charset=([\w.:-]+)", re.IGNORECASE)


@dataclass(slots=True)
class Outgoing:
    method: str
    url: str  # absolute, with its query string
    headers: dict[str, str]
    body: bytes | None
    step: str  # the step it is made for: a load run counts requests per step
    anonymous: bool = False  # present no client certificate in TLS


@dataclass(slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # names in lower case; a repeated header's values joined by ", "
    content: bytes
    elapsed_ms: float
    tls_alert: str | None = None  # no HTTP answer: how the node turned the connection down (see tls_refusal)

    @property
    def text(self) -> str:
        """The body as text, in the charset the answer names (UTF-8 when it names none)."""
        declared = CHARSET.search(self.headers.get("content-type", ""))
        try:
            return self.content.decode(declared.group(1) if declared else "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")


TLS_ALERT = re.compile(r"\[SSL: ([A-Z0-9_]*ALERT[A-Z0-9_]*)\]")


def tls_refusal(exc: httpx.HTTPError) -> str | None:
    """How a node turned the connection down without an HTTP answer: the TLS alert it sent
    (e.g. TLSV13_ALERT_CERTIFICATE_REQUIRED), or that it closed the connection it had accepted.
    None for any other failure: nothing listening (a refused TCP connection) is not a refusal."""
    if isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower():
        return None
    seen: BaseException | None = exc
    while seen is not None:
        found = TLS_ALERT.search(str(seen))
        if found:
            return found.group(1)
        if isinstance(seen, ssl.SSLError):
            return f"TLS error {seen.reason or seen}"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) or "disconnected" in str(exc):
        # TLS 1.3: a server that requires a client certificate finds it missing after the
        # client's side of the handshake is done, and closes; the alert rarely reaches the client.
        return "closed the connection without an HTTP answer"
    return None


class HasItems(Protocol):
    def items(self) -> Iterable[tuple[str, str]]: ...


class LowerCaseHeaders(Mapping[str, str]):
    """Headers with their names in lower case and a repeated header's values joined, read
    from `source` only when a step looks at them (most steps judge a status and a body)."""

    def __init__(self, source: HasItems):
        self._source = source
        self._read: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self._read is None:
            self._read = {}
            for name, value in self._source.items():
                lowered = name.lower()
                self._read[lowered] = f"{self._read[lowered]}, {value}" if lowered in self._read else value
        return self._read

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class TransportError(Exception):
    """The request got no answer; `timed_out` tells a slow node from an unreachable one."""

    def __init__(self, detail: str, timed_out: bool = False):
        super().__init__(detail)
        self.timed_out = timed_out


class Transport(Protocol):
    def send(self, outgoing: Outgoing) -> Reply:
        """The answer, or TransportError when there is none."""
        ...


class HttpxTransport:
    """Sends with an httpx client (the harness's own TLS settings and client certificate), and
    requests that must present no certificate with `anonymous`, a client without one."""

    def __init__(self, client: httpx.Client, anonymous: httpx.Client | None = None):
        self.client = client
        self.anonymous = anonymous

    def send(self, outgoing: Outgoing) -> Reply:
        client = self.client
        if outgoing.anonymous:
            if self.anonymous is None:
                raise TransportError("this transport cannot send without a client certificate")
            client = self.anonymous
        started = time.perf_counter()
        try:
            response = client.request(outgoing.method, outgoing.url, headers=outgoing.headers, content=outgoing.body)
        except httpx.TimeoutException as exc:
            raise TransportError(f"{exc.__class__.__name__}: {exc}", timed_out=True) from exc
        except httpx.HTTPError as exc:
            alert = tls_refusal(exc)
            if alert is None:
                raise TransportError(f"{exc.__class__.__name__}: {exc}") from exc
            return Reply(0, {}, b"", round((time.perf_counter() - started) * 1000, 2), tls_alert=alert)
        return Reply(
            status=response.status_code,
            headers=dict(response.headers.items()),
            content=response.content,
            elapsed_ms=round(response.elapsed.total_seconds() * 1000, 2),
        )
