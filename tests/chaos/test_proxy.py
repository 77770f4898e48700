"""FaultProxy (bench/chaos/proxy.py) against real servers over real loopback sockets.

Nothing here sleeps to let time pass: waits are on conditions (proxy.wait_until, reads with a
socket timeout), each with a generous deadline. Only the latency and timeout tests measure time,
because time is what they test.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.exceptions

from bench.chaos.proxy import FaultProxy, ProxyStats

DEADLINE = 10.0
"""Seconds any wait for a condition may take before the test fails (never reached when passing)."""

MakeClient = Callable[..., redis.Redis]


@pytest.fixture
def redis_addr(redis_url: str) -> tuple[str, int]:
    url = urlsplit(redis_url)
    assert url.hostname and url.port, redis_url
    return url.hostname, url.port


@pytest.fixture
def proxy(redis_addr: tuple[str, int]) -> Iterator[FaultProxy]:
    with FaultProxy(*redis_addr) as p:
        yield p


@pytest.fixture
def make_client(proxy: FaultProxy) -> Iterator[MakeClient]:
    """redis-py clients on the proxy, closed after the test.

    One connection per client (single_connection_client), made at construction: a pooled client
    checks a connection on checkout and silently reconnects one that was reset, hiding the reset.
    """
    made: list[redis.Redis] = []

    def make(socket_timeout: float = 5.0, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("single_connection_client", True)
        client = redis.Redis(
            host=proxy.host, port=proxy.port, socket_timeout=socket_timeout, socket_connect_timeout=5.0, **kwargs
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _raw(proxy: FaultProxy, timeout: float = DEADLINE) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    return sock


def _assert_reset_on_arrival(proxy: FaultProxy) -> None:
    """A new raw connection is reset: during connect() already, or on its first read."""
    with pytest.raises(ConnectionResetError), _raw(proxy) as sock:
        sock.recv(1)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


# -- plain forwarding -----------------------------------------------------------------------------


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_bytes_round_trip_through_the_proxy_to_an_echo_server() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    echo_port = server.sockets[0].getsockname()[1]
    payloads = [random.Random(seed).randbytes(size) for seed, size in enumerate([1, 1000, 1 << 20, 3 << 20])]
    try:
        with FaultProxy("127.0.0.1", echo_port) as proxy:

            async def round_trip(payload: bytes) -> bytes:
                reader, writer = await asyncio.open_connection(proxy.host, proxy.port)

                async def send() -> None:
                    writer.write(payload)
                    await writer.drain()
                    writer.write_eof()  # the proxy passes the half-close on; the echo server then closes

                sender = asyncio.create_task(send())
                echoed = await asyncio.wait_for(reader.read(), DEADLINE)  # to EOF: proves the close came back too
                await sender
                writer.close()
                await writer.wait_closed()
                return echoed

            echoed = await asyncio.gather(*(round_trip(p) for p in payloads))
            assert [len(e) for e in echoed] == [len(p) for p in payloads]
            assert echoed == payloads
            total = sum(len(p) for p in payloads)
            stats = await asyncio.to_thread(proxy.wait_until, lambda s: s.active == 0, DEADLINE)
            assert (stats.connections, stats.bytes_up, stats.bytes_down) == (len(payloads), total, total)
            assert (stats.resets, stats.dropped_up, stats.dropped_down) == (0, 0, 0)
    finally:
        server.close()
        await server.wait_closed()


async def test_latency_keeps_byte_order_of_many_small_writes() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    try:
        with FaultProxy("127.0.0.1", server.sockets[0].getsockname()[1]) as proxy:
            proxy.set_latency(0.05)
            reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
            messages = [f"{i:05d};".encode() for i in range(500)]
            for message in messages:  # one write (mostly one chunk) each, all in flight at once
                writer.write(message)
                await writer.drain()
            expected = b"".join(messages)
            echoed = await asyncio.wait_for(reader.readexactly(len(expected)), DEADLINE)
            assert echoed == expected
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


def test_unreachable_upstream_resets_the_client() -> None:
    with socket.socket() as closed:  # bound, never listening: connecting to it is refused
        closed.bind(("127.0.0.1", 0))
        with FaultProxy("127.0.0.1", closed.getsockname()[1]) as proxy:
            _assert_reset_on_arrival(proxy)
            assert proxy.wait_until(lambda s: s.active == 0, DEADLINE).upstream_failures == 1


# -- Redis ----------------------------------------------------------------------------------------


def test_redis_commands_through_the_proxy(proxy: FaultProxy, make_client: MakeClient) -> None:
    client = make_client()
    key = f"chaos-proxy:{uuid.uuid4().hex}"
    try:
        assert client.ping() is True
        assert client.set(key, b"through the proxy") is True
        assert client.get(key) == b"through the proxy"
    finally:
        client.delete(key)
    stats = proxy.stats()
    assert (stats.connections, stats.active, stats.resets) == (1, 1, 0)
    assert stats.bytes_up > 0 and stats.bytes_down > 0


def test_latency_delays_each_direction(proxy: FaultProxy, make_client: MakeClient) -> None:
    client = make_client()
    assert client.ping()  # connected and handshaken before the latency
    proxy.set_latency(0.2)
    assert proxy.latency == 0.2
    started = time.monotonic()
    assert client.ping()
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 5.0, elapsed  # 0.2 s to Redis, 0.2 s back
    proxy.set_latency(0)
    started = time.monotonic()
    assert client.ping()
    assert time.monotonic() - started < 0.4  # off again: far below one delayed round trip


def test_blackhole_times_clients_out_then_traffic_flows_again(proxy: FaultProxy, make_client: MakeClient) -> None:
    client = make_client(socket_timeout=0.5)
    assert client.ping()
    proxy.blackhole(True)

    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        client.ping()
    assert time.monotonic() - started < 5.0
    # A new connection is accepted, and then hears nothing: its handshake times out.
    with pytest.raises(redis.exceptions.TimeoutError):
        make_client(socket_timeout=0.5)
    # Silence, not a reset or a close: a raw socket's read times out.
    with _raw(proxy, timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        with pytest.raises(TimeoutError):
            sock.recv(1)
    stats = proxy.wait_until(lambda s: s.dropped_up >= len(b"PING\r\n"), DEADLINE)
    assert stats.resets == 0

    proxy.blackhole(False)
    assert make_client(socket_timeout=5.0).ping()  # a new connection works
    assert client.ping()  # and the timed-out client reconnects


def test_reset_all_resets_open_connections(proxy: FaultProxy, make_client: MakeClient) -> None:
    client = make_client()
    assert client.ping()
    with _raw(proxy) as sock:
        sock.sendall(b"PING\r\n")
        assert _recv_exactly(sock, 7) == b"+PONG\r\n"
        proxy.wait_until(lambda s: s.active == 2, DEADLINE)

        assert proxy.reset_all() == 2
        with pytest.raises(ConnectionResetError):  # an RST, not a FIN (that would read b"")
            sock.recv(1)
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()
    assert client.ping()  # reconnects through the proxy
    stats = proxy.wait_until(lambda s: s.active == 1, DEADLINE)
    assert (stats.resets, stats.connections) == (2, 3)


def test_refuse_resets_new_connections_only(proxy: FaultProxy, make_client: MakeClient) -> None:
    before = make_client()
    assert before.ping()
    proxy.refuse(True)

    pooled = make_client(single_connection_client=False)
    with pytest.raises(redis.exceptions.ConnectionError):
        pooled.ping()
    _assert_reset_on_arrival(proxy)
    assert before.ping()  # open connections are left alone
    stats: ProxyStats = proxy.wait_until(lambda s: s.refused == 2, DEADLINE)
    assert (stats.resets, stats.active) == (2, 1)

    proxy.refuse(False)
    assert pooled.ping()
