"""The guarded session's per-request shortcuts: hosts that passed the literal check are not
parsed again (refusals are never remembered), and no cookie is kept between requests.

Every request here that the guard should refuse is also watched by the loopback tripwire."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from bridge.activitypub import addresses
from bridge.activitypub.addresses import AddressPolicy, GuardedConnector, open_remote_session
from bridge.errors import AddressNotAllowed
from tests.fakes.resolver import MappingResolver, loopback_tripwire

LOOPBACK_EXEMPT = AddressPolicy(exempt_networks=(ipaddress.ip_network("127.0.0.1/32"),))


@dataclass
class KeepAlive:
    """A raw HTTP/1.1 listener on 127.0.0.1 that keeps connections open and answers every
    request ``204`` with a cookie; it records connections and request heads."""

    port: int = 0
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)

    async def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.heads.append(head)
                writer.write(b"HTTP/1.1 204 No Content\r\nSet-Cookie: session=abc; Path=/\r\n\r\n")
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass  # the client closed the connection: the normal end
        finally:
            writer.close()


@pytest.fixture
async def keep_alive() -> AsyncIterator[KeepAlive]:
    listener = KeepAlive()
    server = await asyncio.start_server(listener.on_connect, "127.0.0.1", 0)
    listener.port = server.sockets[0].getsockname()[1]
    yield listener
    server.close()
    await server.wait_closed()


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host string the connector parses for an IP literal, in order."""
    seen: list[str] = []
    real = addresses.literal_address

    def counting(host: str) -> addresses.IPAddress | None:
        seen.append(host)
        return real(host)

    monkeypatch.setattr(addresses, "literal_address", counting)
    return seen


def guarded_session(policy: AddressPolicy, resolver: MappingResolver) -> aiohttp.ClientSession:
    connector = GuardedConnector(policy, resolver=resolver)
    return aiohttp.ClientSession(connector=connector, trace_configs=[loopback_tripwire(resolver)])


async def test_pooled_requests_are_not_rechecked_but_a_refused_literal_always_is(
    keep_alive: KeepAlive, parsed: list[str]
) -> None:
    port = keep_alive.port
    async with guarded_session(LOOPBACK_EXEMPT, MappingResolver({})) as session:
        for _ in range(3):
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                assert response.status == 204
        for _ in range(2):
            with pytest.raises(AddressNotAllowed, match=r"loopback address 127\.0\.0\.2"):
                await session.get(f"http://127.0.0.2:{port}/")
        async with session.get(f"http://127.0.0.1:{port}/again") as response:
            assert response.status == 204
    assert keep_alive.connections == 1  # the three later requests went over the pooled one
    assert len(keep_alive.heads) == 4
    assert parsed == ["127.0.0.1", "127.0.0.2", "127.0.0.2"]


async def test_a_name_is_parsed_once_and_still_resolved_through_the_guard(
    keep_alive: KeepAlive, parsed: list[str]
) -> None:
    resolver = MappingResolver({"alice.test": "127.0.0.1", "intranet.test": "10.0.0.1"})
    async with guarded_session(LOOPBACK_EXEMPT, resolver) as session:
        for path in ("/a", "/b"):
            async with session.get(f"http://alice.test:{keep_alive.port}{path}") as response:
                assert response.status == 204
        for _ in range(2):
            with pytest.raises(AddressNotAllowed, match="private"):
                await session.get(f"http://intranet.test:{keep_alive.port}/")
    # A name passes the literal check once; whether it may be reached is the resolver's call,
    # made on every resolution, so the refused name stays refused.
    assert parsed == ["alice.test", "intranet.test"]
    assert resolver.lookups.count("intranet.test") == 2


async def test_remembered_hosts_are_bounded(
    monkeypatch: pytest.MonkeyPatch, keep_alive: KeepAlive, parsed: list[str]
) -> None:
    monkeypatch.setattr(addresses, "PASSED_HOSTS_KEPT", 2)
    names = {"a.test": "127.0.0.1", "b.test": "127.0.0.1", "c.test": "127.0.0.1"}
    async with guarded_session(LOOPBACK_EXEMPT, MappingResolver(names)) as session:
        for host in ("a.test", "b.test", "c.test", "a.test", "c.test"):
            async with session.get(f"http://{host}:{keep_alive.port}/") as response:
                assert response.status == 204
    # Full at a and b: c starts the memory over, so a is parsed again, c is not.
    assert parsed == ["a.test", "b.test", "c.test", "a.test"]


async def test_remote_session_keeps_no_cookies(keep_alive: KeepAlive) -> None:
    resolver = MappingResolver({"alice.test": "127.0.0.1"})
    async with open_remote_session(
        LOOPBACK_EXEMPT, user_agent="feedfed-test", resolver=resolver
    ) as session:
        for _ in range(2):
            async with session.get(f"http://alice.test:{keep_alive.port}/") as response:
                assert response.status == 204
                assert response.headers["Set-Cookie"].startswith("session=abc")
        assert len(session.cookie_jar) == 0
    assert len(keep_alive.heads) == 2
    assert all(b"\r\ncookie:" not in head.lower() for head in keep_alive.heads)
