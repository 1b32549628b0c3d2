"""A resolver that knows only the names a test gives it: nothing else resolves, nothing leaks."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from types import SimpleNamespace

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

LOOPBACK = "127.0.0.1"


class TripwireError(AssertionError):
    """A test was about to connect somewhere other than loopback: the guard under test failed."""


class MappingResolver(AbstractResolver):
    """Resolves the mapped names (each to one or more addresses); raises for every other name.

    ``lookups`` records every name asked for, so a test can prove what was (not) resolved.
    """

    def __init__(self, names: Mapping[str, str | Sequence[str]]) -> None:
        self.names = {
            name: (value,) if isinstance(value, str) else tuple(value)
            for name, value in names.items()
        }
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        addresses = self.names.get(host)
        if addresses is None:
            raise OSError(f"test resolver refuses {host!r}: it knows only {sorted(self.names)}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6
                if ipaddress.ip_address(address).version == 6
                else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def loopback_tripwire(resolver: MappingResolver) -> aiohttp.TraceConfig:
    """A trace config that aborts any request about to connect beyond 127.0.0.1.

    It fires before a socket exists: on an IP-literal request at connection start, on a host
    name right after it resolved (aiohttp connects only after that). Tests of refusals attach
    it so that a broken guard fails the test instead of reaching the network.
    """

    async def on_request_start(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        ctx.host = params.url.raw_host

    async def on_connection_create_start(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceConnectionCreateStartParams,
    ) -> None:
        host = getattr(ctx, "host", None)
        if host is None:
            raise TripwireError("connection without a traced request")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: checked once resolved, below
        if str(literal) != LOOPBACK:
            raise TripwireError(f"about to connect to {literal}")

    async def on_dns_resolvehost_end(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceDnsResolveHostEndParams,
    ) -> None:
        addresses = resolver.names.get(params.host, ())
        if any(address != LOOPBACK for address in addresses):
            raise TripwireError(f"{params.host} resolved to {addresses} and was let through")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    trace.on_connection_create_start.append(on_connection_create_start)
    trace.on_dns_resolvehost_end.append(on_dns_resolvehost_end)
    return trace
