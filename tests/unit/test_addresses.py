"""The address guard: which addresses are public, what the policy permits, and that refusals
happen before any connection (every test here that would connect is stopped by a tripwire)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge.activitypub.addresses import (
    AddressClass,
    AddressPolicy,
    GuardedConnector,
    GuardedResolver,
    allow_private_from_env,
    announce_policy,
    classify_address,
    is_public_address,
    literal_address,
    policy_from_env,
)
from bridge.errors import AddressNotAllowed, ConfigError
from tests.fakes.resolver import MappingResolver, TripwireError, loopback_tripwire

REFUSED = [
    # IPv4
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "255.255.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "192.0.0.8",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",
    "198.19.255.255",
    "192.88.99.1",
    # IPv6
    "::",
    "::1",
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "ff05::1:3",
    "100::1",
    "2001::1",
    "2001:2::1",
    "2001:db8::1",
    "3fff::1",
    "5f00::1",
    "4000::1",
    "::7f00:1",
    # IPv6 forms that lead to refused IPv4 addresses
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:0.0.0.0",
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::a00:1",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "2002:c0a8:101::1",
]

PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.216.34",
    "172.15.255.255",
    "172.32.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "192.167.255.255",
    "192.169.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "223.255.255.254",
    "2606:4700:4700::1111",
    "2a01:4f8:c0c:1234::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", REFUSED)
def test_refused_addresses_are_not_public(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public_address(ip)
    reason = AddressPolicy().refusal(ip)
    assert reason is not None and str(ip) in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert is_public_address(ip)
    assert AddressPolicy().refusal(ip) is None


@pytest.mark.parametrize(
    ("address", "kind", "reason"),
    [
        ("127.0.0.1", AddressClass.PRIVATE, "loopback"),
        ("10.1.2.3", AddressClass.PRIVATE, "RFC 1918"),
        ("100.64.0.1", AddressClass.PRIVATE, "shared address space"),
        ("fd00::1", AddressClass.PRIVATE, "unique local"),
        ("169.254.169.254", AddressClass.FORBIDDEN, "link-local"),
        ("198.18.0.1", AddressClass.FORBIDDEN, "benchmarking"),
        ("::ffff:127.0.0.1", AddressClass.PRIVATE, "IPv4-mapped form of loopback"),
        ("::ffff:169.254.169.254", AddressClass.FORBIDDEN, "IPv4-mapped form of link-local"),
        ("64:ff9b::a00:1", AddressClass.PRIVATE, "NAT64 form of private"),
        ("2002:a9fe:a9fe::1", AddressClass.FORBIDDEN, "6to4 form of link-local"),
        ("2001::1", AddressClass.FORBIDDEN, "Teredo"),
        ("4000::1", AddressClass.FORBIDDEN, "global unicast"),
    ],
)
def test_classification_names_the_reason(address: str, kind: AddressClass, reason: str) -> None:
    verdict = classify_address(ipaddress.ip_address(address))
    assert verdict.kind is kind
    assert reason in verdict.reason


def test_allow_private_opens_private_ranges_only() -> None:
    policy = AddressPolicy(allow_private=True)
    for allowed in ("127.0.0.1", "10.0.0.1", "192.168.0.10", "::1", "fd00::1", "::ffff:10.0.0.1"):
        assert policy.refusal(ipaddress.ip_address(allowed)) is None, allowed
    for refused in ("169.254.169.254", "0.0.0.0", "224.0.0.1", "fe80::1", "192.0.2.1", "::"):
        assert policy.refusal(ipaddress.ip_address(refused)) is not None, refused


def test_exempt_networks_are_exact_and_version_bound() -> None:
    policy = AddressPolicy(exempt_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) is not None
    assert policy.refusal(ipaddress.ip_address("10.0.0.1")) is not None
    # Same integer as 127.0.0.1, but an IPv6 address: an IPv4 exemption must not cover it.
    assert policy.refusal(ipaddress.ip_address("::7f00:1")) is not None


def test_check_raises_with_url() -> None:
    with pytest.raises(AddressNotAllowed) as caught:
        AddressPolicy().check(ipaddress.ip_address("10.0.0.1"), "http://intranet.example/x")
    assert caught.value.url == "http://intranet.example/x"
    assert "10.0.0.1" in str(caught.value)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("example.org", None),
        ("cafe.example", None),
        ("deadbeef", None),
        ("xn--bcher-kva.de", None),
    ],
)
def test_literal_address(host: str, expected: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found is not None else None) == expected


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001", "0x7f000001"])
def test_legacy_numeric_ipv4_forms_are_refused(host: str) -> None:
    with pytest.raises(AddressNotAllowed, match="legacy numeric"):
        literal_address(host)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("yes", True), (" on ", True), ("0", False)],
)
def test_allow_private_from_env(value: str, expected: bool) -> None:
    env = {"FEEDFED_ALLOW_PRIVATE_ADDRESSES": value}
    assert allow_private_from_env(env) is expected
    assert policy_from_env(env) == AddressPolicy(allow_private=expected)


def test_allow_private_defaults_off_and_rejects_nonsense() -> None:
    assert allow_private_from_env({}) is False
    assert policy_from_env({}) == AddressPolicy()
    with pytest.raises(ConfigError, match="FEEDFED_ALLOW_PRIVATE_ADDRESSES"):
        allow_private_from_env({"FEEDFED_ALLOW_PRIVATE_ADDRESSES": "maybe"})


def test_announce_policy_warns_loudly_only_when_relaxed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.announce")
    with caplog.at_level(logging.INFO, logger="test.announce"):
        announce_policy(AddressPolicy(), logger)
    assert caplog.records == []
    with caplog.at_level(logging.INFO, logger="test.announce"):
        announce_policy(AddressPolicy(allow_private=True), logger)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "FEEDFED_ALLOW_PRIVATE_ADDRESSES" in record.getMessage()
    assert "never on a public server" in record.getMessage()


NAMES = {
    "public.test": "93.184.216.34",
    "metadata.test": "169.254.169.254",
    "intranet.test": "10.0.0.1",
    "mapped.test": "::ffff:127.0.0.1",
    "mixed.test": ["93.184.216.34", "127.0.0.1"],
    "loop.test": "127.0.0.1",
}


async def test_guarded_resolver_passes_public_answers() -> None:
    guarded = GuardedResolver(MappingResolver(NAMES), AddressPolicy())
    [result] = await guarded.resolve("public.test", 443)
    assert result["host"] == "93.184.216.34"


@pytest.mark.parametrize(
    "name", ["metadata.test", "intranet.test", "mapped.test", "mixed.test", "loop.test"]
)
async def test_guarded_resolver_refuses_any_refused_answer(name: str) -> None:
    guarded = GuardedResolver(MappingResolver(NAMES), AddressPolicy())
    with pytest.raises(AddressNotAllowed) as caught:
        await guarded.resolve(name, 443)
    assert caught.value.url == name


async def test_guarded_resolver_passes_resolver_failures_through() -> None:
    guarded = GuardedResolver(MappingResolver(NAMES), AddressPolicy())
    with pytest.raises(OSError, match="refuses"):
        await guarded.resolve("unknown.test", 443)


@pytest.fixture
async def accepted() -> AsyncIterator[tuple[int, list[int]]]:
    """A raw TCP listener on 127.0.0.1 that counts accepted connections and answers 204."""
    count: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, count
    server.close()
    await server.wait_closed()


def guarded_session(policy: AddressPolicy, resolver: MappingResolver) -> aiohttp.ClientSession:
    connector = GuardedConnector(policy, resolver=resolver)
    return aiohttp.ClientSession(connector=connector, trace_configs=[loopback_tripwire(resolver)])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://10.0.0.1:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:{port}/",
        "http://[fe80::1]:{port}/",
        "http://2130706433:{port}/",
    ],
)
async def test_connector_refuses_ip_literals_before_connecting(
    url: str, accepted: tuple[int, list[int]]
) -> None:
    port, count = accepted
    resolver = MappingResolver({})
    async with guarded_session(AddressPolicy(), resolver) as session:
        with pytest.raises(AddressNotAllowed):
            await session.get(url.format(port=port))
    assert count == []
    assert resolver.lookups == []


async def test_connector_refuses_names_resolving_to_loopback(
    accepted: tuple[int, list[int]],
) -> None:
    port, count = accepted
    resolver = MappingResolver({"alice.test": "127.0.0.1"})
    async with guarded_session(AddressPolicy(), resolver) as session:
        with pytest.raises(AddressNotAllowed, match="loopback"):
            await session.get(f"http://alice.test:{port}/")
    assert count == []
    assert resolver.lookups == ["alice.test"]


async def test_connector_refuses_proxies(accepted: tuple[int, list[int]]) -> None:
    port, count = accepted
    resolver = MappingResolver({"alice.test": "93.184.216.34"})
    policy = AddressPolicy(exempt_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    async with guarded_session(policy, resolver) as session:
        with pytest.raises(AddressNotAllowed, match="prox"):
            await session.get("http://alice.test/", proxy=f"http://127.0.0.1:{port}")
    assert count == []


async def test_exempt_loopback_connects(accepted: tuple[int, list[int]]) -> None:
    """The control: with loopback exempted, the same request does reach the listener."""
    port, count = accepted
    resolver = MappingResolver({"alice.test": "127.0.0.1"})
    policy = AddressPolicy(exempt_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    async with (
        guarded_session(policy, resolver) as session,
        session.get(f"http://alice.test:{port}/") as response,
    ):
        assert response.status == 204
    assert count == [1]


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://intranet.test/"])
async def test_tripwire_stops_what_a_relaxed_guard_lets_through(url: str) -> None:
    """The harness itself: were the guard broken, these tests would fail, not go online."""
    resolver = MappingResolver({"intranet.test": "10.0.0.1"})
    async with guarded_session(AddressPolicy(allow_private=True), resolver) as session:
        with pytest.raises(TripwireError):
            await session.get(url)
