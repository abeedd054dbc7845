"""How the engine's requests travel. The engine makes an `Outgoing` request (URL, headers and
body final) and a `Transport` sends it and hands back a `Reply`. A conformance run sends with
httpx (`HttpxTransport`); a load run with each simulated user's Locust session
(testbed/load/locustfile.py). So one engine replays a step the same way in both."""

from __future__ import annotations

import re
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


@dataclass(slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # names in lower case; a repeated header's values joined by ", "
    content: bytes
    elapsed_ms: float

    @property
    def text(self) -> str:
        """The body as text, in the charset the answer names (UTF-8 when it names none)."""
        declared = CHARSET.search(self.headers.get("content-type", ""))
        try:
            return self.content.decode(declared.group(1) if declared else "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")


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
    """Sends with an httpx client (the harness's own TLS settings and client certificate)."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def send(self, outgoing: Outgoing) -> Reply:
        try:
            response = self.client.request(
                outgoing.method, outgoing.url, headers=outgoing.headers, content=outgoing.body
            )
        except httpx.TimeoutException as exc:
            raise TransportError(f"{exc.__class__.__name__}: {exc}", timed_out=True) from None
        except httpx.HTTPError as exc:
            raise TransportError(f"{exc.__class__.__name__}: {exc}") from None
        return Reply(
            status=response.status_code,
            headers=dict(response.headers.items()),
            content=response.content,
            elapsed_ms=round(response.elapsed.total_seconds() * 1000, 2),
        )
