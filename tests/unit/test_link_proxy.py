"""The link-fault proxy on loopback, in a thread, with a plain TCP echo server behind it: open
links tunnel, cut links refuse and close, healed links work again, delay and loss do what they
say (timing asserted as a lower bound only), and hostile input is refused cleanly."""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from testbed.faults.proxy import HARNESS, LinkFaultError, ProxyConfig, ProxyThread, egress_url


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _echo_server() -> Iterator[str]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    """host:port of node b (a TCP echo server)."""
    yield from _echo_server()


@pytest.fixture(scope="module")
def stranger() -> Iterator[str]:
    """host:port of an echo server on loopback that is no node of the run."""
    yield from _echo_server()


@pytest.fixture
def proxy(echo: str) -> Iterator[ProxyThread]:
    config = ProxyConfig(nodes={"a": [], "b": [echo], "c": []}, seed="unit")
    with ProxyThread(config) as running:
        yield running


def _port(proxy: ProxyThread) -> int:
    return int(proxy.url.rsplit(":", 1)[1])


def _head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0


def send_raw(proxy: ProxyThread, data: bytes, *, close_write: bool = False) -> bytes:
    """What the proxy answers to `data`, up to the end of its answer's head."""
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        return _head(sock)


def connect(proxy: ProxyThread, target: str, source: str | None = "a", timeout: float = 5) -> tuple[int, socket.socket]:
    """A CONNECT as a node sends it; the status of the answer and the socket."""
    sock = socket.create_connection(("127.0.0.1", _port(proxy)), timeout=timeout)
    sock.sendall(connect_request(target, source))
    return _status(_head(sock)), sock


def connect_request(target: str, source: str | None = "a") -> bytes:
    auth = f"Proxy-Authorization: Basic {base64.b64encode(f'{source}:'.encode()).decode()}\r\n" if source else ""
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode()


def echoes(sock: socket.socket, message: bytes = b"ping") -> bool:
    try:
        sock.sendall(message)
        received = b""
        while len(received) < len(message):
            chunk = sock.recv(4096)
            if not chunk:
                return False
            received += chunk
    except OSError:
        return False
    return received == message


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# --- links ---------------------------------------------------------------------------------------
def test_an_open_link_tunnels_both_ways(proxy: ProxyThread, echo: str) -> None:
    status, sock = connect(proxy, echo)
    with sock:
        assert status == 200
        assert echoes(sock, b"hello through the tunnel")


def test_a_cut_refuses_new_tunnels_and_closes_open_ones(proxy: ProxyThread, echo: str) -> None:
    _, before = connect(proxy, echo)
    proxy.cut("a", "b")
    status, after = connect(proxy, echo)

    with before, after:
        assert closed(before)
        assert status == 502
        assert closed(after)


def test_a_cut_holds_for_its_link_only(proxy: ProxyThread, echo: str) -> None:
    proxy.cut("a", "b", one_way=True)
    status, sock = connect(proxy, echo, source="c")

    with sock:
        assert status == 200
        assert echoes(sock)
    assert [(link["from"], link["to"]) for link in proxy.show()["links"]] == [("a", "b")]


def test_heal_opens_the_link_again_and_tunnels_that_survived_keep_working(proxy: ProxyThread, echo: str) -> None:
    proxy.delay("a", "b", 20)
    _, delayed = connect(proxy, echo)
    proxy.cut("a", "c")  # another link: the delayed tunnel is not touched
    proxy.heal("a", "b")
    proxy.cut("a", "b")
    refused, _ = connect(proxy, echo)
    proxy.heal("a", "b")
    status, fresh = connect(proxy, echo)

    with delayed, fresh:
        assert refused == 502
        assert status == 200
        assert echoes(fresh)
    assert proxy.show()["links"] == [
        {"from": "a", "to": "c", "cut": True, "delay_ms": 0, "loss": 0.0, "stall": False},
        {"from": "c", "to": "a", "cut": True, "delay_ms": 0, "loss": 0.0, "stall": False},
    ]


def test_a_healed_delay_leaves_its_tunnel_working(proxy: ProxyThread, echo: str) -> None:
    proxy.delay("a", "b", 20)
    _, sock = connect(proxy, echo)
    with sock:
        assert echoes(sock, b"slow")
        proxy.heal("a", "b")
        assert echoes(sock, b"fast again")


def test_a_delay_holds_every_chunk_each_way_at_least_that_long(proxy: ProxyThread, echo: str) -> None:
    _, sock = connect(proxy, echo)  # opened before the fault: a kept-alive connection is slowed too
    proxy.delay("a", "b", 150)
    with sock:
        started = time.monotonic()
        assert echoes(sock)
        round_trip = time.monotonic() - started
        started = time.monotonic()
        status, fresh = connect(proxy, echo)
        set_up = time.monotonic() - started
        fresh.close()

    assert round_trip >= 0.3  # 150 ms there and 150 ms back; never an upper bound
    assert status == 200 and set_up >= 0.15


def test_loss_drops_about_its_share_of_connections(proxy: ProxyThread, echo: str) -> None:
    proxy.lose("a", "b", 0.3)
    statuses = []
    for _ in range(200):
        status, sock = connect(proxy, echo)
        statuses.append(status)
        sock.close()

    lost = statuses.count(502) / len(statuses)
    assert set(statuses) == {200, 502}
    assert 0.15 <= lost <= 0.45


def test_a_stalled_link_leaves_a_connect_unanswered_until_it_heals(proxy: ProxyThread, echo: str) -> None:
    proxy.lose("a", "b", 1.0, stall=True)
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=0.3) as sock:
        sock.sendall(connect_request(echo))
        with pytest.raises(TimeoutError):
            sock.recv(100)
        sock.settimeout(5)
        proxy.heal("a", "b")
        assert closed(sock)  # let go once healed: the caller tries again


def test_clear_undoes_every_fault(proxy: ProxyThread, echo: str) -> None:
    proxy.cut("a", "b")
    proxy.delay("c", "b", 500)
    proxy.lose(HARNESS, "b", 1.0)
    proxy.clear()

    assert proxy.show()["links"] == []
    for source in ("a", "c", HARNESS):
        status, sock = connect(proxy, echo, source=source)
        with sock:
            assert status == 200
            assert echoes(sock)


def test_a_fault_on_the_harness_link_holds_one_way_only(proxy: ProxyThread, echo: str) -> None:
    shown = proxy.cut(HARNESS, "b")
    refused, _ = connect(proxy, echo, source=HARNESS)
    status, sock = connect(proxy, echo)

    with sock:
        assert status == 200
    assert refused == 502
    assert [(link["from"], link["to"]) for link in shown["links"]] == [(HARNESS, "b")]


def test_a_client_that_names_no_source_is_tunnelled_but_no_fault_applies_to_it(proxy: ProxyThread, echo: str) -> None:
    proxy.cut("a", "b")
    status, sock = connect(proxy, echo, source=None)
    with sock:
        assert status == 200
        assert echoes(sock)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.cut("a", "nowhere"), "no node 'nowhere' in this run"),
        (lambda p: p.cut("nowhere", "a"), "no node 'nowhere' in this run"),
        (lambda p: p.cut("a", HARNESS), f"no node '{HARNESS}' in this run"),
        (lambda p: p.cut("a", "a"), "'a' to itself is no link"),
        (lambda p: p.lose("a", "b", 1.5), "ratio"),
        (lambda p: p.delay("a", "b", -1), "ms"),
    ],
)
def test_a_fault_the_proxy_cannot_set_is_refused_saying_why(proxy: ProxyThread, call, message: str) -> None:
    with pytest.raises(LinkFaultError, match=message):
        call(proxy)
    assert proxy.show()["links"] == []


def test_egress_url_names_the_source_as_the_proxy_user() -> None:
    url = egress_url("http://127.0.0.1:4000", "hospital-station")

    assert url == "http://hospital-station@127.0.0.1:4000"
    assert httpx.Proxy(url).raw_auth == (b"hospital-station", b"")


# --- hostile input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
        (b"CONNECT 10.1.2.3:443 HTTP/1.1\r\n\r\n", 403),
        (b"CONNECT example.org:443 HTTP/1.1\r\n\r\n", 403),
        (b"CONNECT 127.0.0.1:0 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT 127.0.0.1:443\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\xff\xfe\r\n\r\n", 400),
        (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: Basic !!!\r\n\r\n", 407),
        (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n", 407),
        (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: Basic bWFsbG9yeTo=\r\n\r\n", 407),
        (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nX-Filler: " + b"x" * 10_000 + b"\r\n\r\n", 431),
        (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nX-Filler: " + b"x" * 200_000 + b"\r\n\r\n", 431),
    ],
    ids=[
        "not-connect",
        "private-address",
        "outside-name",
        "port-zero",
        "no-port",
        "port-too-big",
        "no-version",
        "binary",
        "header-without-colon",
        "credentials-not-base64",
        "credentials-not-basic",
        "unknown-source",
        "head-over-8k",
        "head-of-200k",
    ],
)
def test_hostile_input_gets_a_clean_refusal_and_the_proxy_keeps_serving(
    proxy: ProxyThread, echo: str, data: bytes, status: int
) -> None:
    assert _status(send_raw(proxy, data)) == status

    code, sock = connect(proxy, echo)
    with sock:
        assert code == 200 and echoes(sock)


def test_a_request_cut_short_is_answered_400(proxy: ProxyThread) -> None:
    assert _status(send_raw(proxy, b"\x00\x01garbage without an end", close_write=True)) == 400


def test_a_connection_closed_at_once_is_let_go(proxy: ProxyThread, echo: str) -> None:
    socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5).close()
    status, sock = connect(proxy, echo)
    with sock:
        assert status == 200


def test_a_loopback_address_of_no_node_is_forwarded_only_where_allowed(echo: str, stranger: str) -> None:
    for allow, expected in ((True, 200), (False, 403)):
        config = ProxyConfig(nodes={"a": [], "b": [echo]}, allow_loopback=allow)
        with ProxyThread(config) as proxy:
            status, sock = connect(proxy, stranger)
            sock.close()
        assert status == expected
