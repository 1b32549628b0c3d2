"""Which network addresses the bridge may contact on an outsider's say-so, and the guard for it.

Every URL a remote party names (actor, key, object, inbox, webmention endpoint) could point at
the bridge's own network: a metadata service on 169.254.169.254, a database on 10.0.0.5, an
admin page on 127.0.0.1. The guard refuses such addresses before any connection is made.

How the guard is built, and why:

* The check is on the address actually connected to. :class:`GuardedResolver` wraps the
  resolver of a dedicated connector and refuses before aiohttp sees an address; aiohttp connects
  to exactly what its resolver returns, so a DNS answer that changes between check and connect
  (DNS rebinding) cannot slip through. Legacy numeric forms such as ``0x7f.1`` are resolved by
  the system resolver to ``127.0.0.1`` and refused as such.
* aiohttp never asks a resolver about IP literals, so :class:`GuardedConnector` checks those
  itself, and refuses proxies (the guard cannot see what a proxy connects to). Its verdict on a
  host string depends on nothing but that string and the connector's fixed policy, so a host
  that passed is remembered and not parsed again on every request (a delivery stream sends
  thousands of requests to the same few hundred hosts); a refusal is never remembered, so a
  refused host is refused on every request.
* Production cannot allow loopback by accident: :class:`AddressPolicy` refuses by default. The
  only relaxations are ``allow_private`` (set from ``FEEDFED_ALLOW_PRIVATE_ADDRESSES`` for local
  trials, announced with a loud warning) and ``exempt_networks``, which a caller must spell out
  network by network (tests name ``127.0.0.1/32`` and pair it with a resolver that knows only
  their own host names). Even ``allow_private`` never opens link-local (cloud metadata),
  multicast, unspecified, documentation, benchmarking or reserved addresses.
* The operator's own configured URLs (feeds, hubs) do not go through this guard: they use the
  context's ordinary session, because a blog may well live on the operator's private network.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from bridge.errors import AddressNotAllowed, ConfigError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_PRIVATE_ENV = "FEEDFED_ALLOW_PRIVATE_ADDRESSES"
PASSED_HOSTS_KEPT = 10_000
"""How many host strings a :class:`GuardedConnector` remembers as passed before it starts over."""


class AddressClass(enum.Enum):
    """How far an address may be trusted as a destination."""

    PUBLIC = "public"
    # Loopback, RFC 1918, unique-local, shared CGNAT: reachable only inside the operator's network.
    PRIVATE = "private"
    # Never a legitimate fediverse server: link-local, multicast, documentation, reserved, …
    FORBIDDEN = "forbidden"


class Verdict(NamedTuple):
    """The class of an address and, unless public, why."""

    kind: AddressClass
    reason: str


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in pairs)


_PRIVATE_V4 = _nets(
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (RFC 6598)"),
)
_FORBIDDEN_V4 = _nets(
    ("0.0.0.0/8", "'this network' (RFC 791)"),
    ("169.254.0.0/16", "link-local (cloud metadata services live here)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_PRIVATE_V6 = _nets(
    ("::1/128", "loopback"),
    ("fc00::/7", "unique local (private)"),
)
_FORBIDDEN_V6 = _nets(
    ("::/128", "unspecified"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo tunnel"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def classify_address(ip: IPAddress) -> Verdict:
    """Classify ``ip`` as public, private (relaxable for trials) or forbidden.

    IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64 ``64:ff9b::/96``, 6to4) are
    judged by the address they lead to: ``::ffff:127.0.0.1`` is loopback.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, form = _embedded_ipv4(ip)
        if embedded is not None:
            inner = classify_address(embedded)
            if inner.kind is AddressClass.PUBLIC:
                return inner
            return Verdict(inner.kind, f"{form} form of {inner.reason} {embedded}")
        private, forbidden = _PRIVATE_V6, _FORBIDDEN_V6
    else:
        private, forbidden = _PRIVATE_V4, _FORBIDDEN_V4
    for table, kind in ((private, AddressClass.PRIVATE), (forbidden, AddressClass.FORBIDDEN)):
        for network, reason in table:
            if ip in network:
                return Verdict(kind, reason)
    # The tables name the reasons; the properties are the backstop for anything they miss.
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST:
        return Verdict(AddressClass.FORBIDDEN, "outside IPv6 global unicast (2000::/3)")
    if ip.is_loopback or ip.is_private:
        return Verdict(AddressClass.PRIVATE, "private")
    if (
        ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    ):
        return Verdict(AddressClass.FORBIDDEN, "not globally routable")
    return Verdict(AddressClass.PUBLIC, "public")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    return None, ""


def is_public_address(ip: IPAddress) -> bool:
    """True if ``ip`` is a globally routable unicast address a remote server may live on."""
    return classify_address(ip).kind is AddressClass.PUBLIC


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells literally (``[::1]`` brackets allowed), else ``None``.

    Raises :class:`AddressNotAllowed` for legacy numeric IPv4 spellings (``2130706433``,
    ``0x7f.1``, ``127.1``) that socket libraries turn into addresses behind a checker's back.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and all(c in "0123456789abcdefxABCDEFX." for c in bare):
        try:
            socket.inet_aton(bare)
        except OSError:
            return None
        raise AddressNotAllowed(host, "legacy numeric IPv4 form refused")
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Decides which addresses may be contacted on behalf of remote parties.

    The default refuses everything but public addresses. ``allow_private`` additionally permits
    loopback, RFC 1918, unique-local and shared addresses (local trials only). Addresses inside
    one of ``exempt_networks`` are permitted whatever their class: an explicit, named exception.
    """

    allow_private: bool = False
    exempt_networks: tuple[IPNetwork, ...] = ()

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be contacted, or ``None`` if it may."""
        if any(ip.version == net.version and ip in net for net in self.exempt_networks):
            return None
        verdict = classify_address(ip)
        if verdict.kind is AddressClass.PUBLIC:
            return None
        if verdict.kind is AddressClass.PRIVATE and self.allow_private:
            return None
        return f"{verdict.reason} address {ip} refused"

    def check(self, ip: IPAddress, url: str) -> None:
        """Raise :class:`AddressNotAllowed` (naming ``url``) unless ``ip`` may be contacted."""
        reason = self.refusal(ip)
        if reason is not None:
            raise AddressNotAllowed(url, reason)


def allow_private_from_env(env: Mapping[str, str]) -> bool:
    """Read ``FEEDFED_ALLOW_PRIVATE_ADDRESSES``: 1/true/yes/on allow; unset or 0/false denies."""
    raw = env.get(ALLOW_PRIVATE_ENV, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(ALLOW_PRIVATE_ENV, f"must be 1/true or 0/false, got {raw!r}")


def policy_from_env(env: Mapping[str, str]) -> AddressPolicy:
    """The production policy: public addresses only, unless the environment opts into private."""
    return AddressPolicy(allow_private=allow_private_from_env(env))


def announce_policy(policy: AddressPolicy, logger: logging.Logger = log) -> None:
    """Log a loud WARNING if ``policy`` lets remote parties reach private addresses.

    The application calls this at start, so an operator never runs a public bridge with the
    guard relaxed without seeing it in the log.
    """
    if policy.allow_private:
        logger.warning(
            "!!! %s is on: remote parties can make this bridge contact loopback and private "
            "network addresses. Use this only for local trials, never on a public server. !!!",
            ALLOW_PRIVATE_ENV,
        )
    if policy.exempt_networks:
        logger.warning(
            "remote fetch guard exempts networks %s",
            ", ".join(str(net) for net in policy.exempt_networks),
        )


class GuardedResolver(AbstractResolver):
    """A resolver that refuses a host name if any address it resolves to is refused.

    One refused address refuses the whole name: a public name that also answers with
    ``127.0.0.1`` is a rebinding trick, not a misconfiguration worth working around.
    """

    def __init__(self, inner: AbstractResolver, policy: AddressPolicy) -> None:
        self.inner = inner
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve with the wrapped resolver, then check every address."""
        results = await self.inner.resolve(host, port, family)
        for result in results:
            try:
                ip = ipaddress.ip_address(result["host"])
            except ValueError:
                raise AddressNotAllowed(
                    host, f"resolver returned an unreadable address {result['host']!r}"
                ) from None
            self.policy.check(ip, host)
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self.inner.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector whose every destination passes :class:`AddressPolicy`.

    Host names go through :class:`GuardedResolver`; IP literals are checked in :meth:`connect`
    because aiohttp never hands them to a resolver. ``policy`` is fixed for the connector's life:
    the hosts it let pass are remembered on that basis.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: AbstractResolver | None = None,
        **kwargs: Any,
    ) -> None:
        self._policy = policy
        # Host strings (names, and literals the policy permits) that passed the literal check.
        self._passed: set[str] = set()
        inner = resolver if resolver is not None else aiohttp.DefaultResolver()
        super().__init__(resolver=GuardedResolver(inner, policy), **kwargs)

    @property
    def policy(self) -> AddressPolicy:
        """The policy every destination of this connector must pass."""
        return self._policy

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,
    ) -> Connection:
        """Refuse proxies and refused IP literals, then connect as usual."""
        if req.proxy is not None:
            raise AddressNotAllowed(
                str(req.url), "proxies are refused: the guard cannot see past them"
            )
        host = req.url.raw_host
        if host is not None and host not in self._passed:
            self._check_literal(host, req)
        return await super().connect(req, traces, timeout)

    def _check_literal(self, host: str, req: ClientRequest) -> None:
        """Raise unless ``host`` is a name or a literal the policy permits; remember it if so."""
        if (ip := literal_address(host)) is not None:
            self._policy.check(ip, str(req.url))
        if len(self._passed) >= PASSED_HOSTS_KEPT:
            self._passed.clear()  # a crude bound: forgetting costs one parse per host, no more
        self._passed.add(host)


def open_remote_session(
    policy: AddressPolicy,
    *,
    user_agent: str,
    resolver: AbstractResolver | None = None,
    limit: int = 100,
    limit_per_host: int = 8,
) -> aiohttp.ClientSession:
    """A client session for everything remote parties name; call inside the event loop.

    ``resolver`` replaces the system resolver (tests map their host names with it); it is
    wrapped in the guard either way. The caller closes the session.
    """
    connector = GuardedConnector(
        policy,
        resolver=resolver,
        limit=limit,
        limit_per_host=limit_per_host,
        ttl_dns_cache=300,
    )
    # No cookie jar: nothing the bridge sends to or fetches from remote parties needs cookies,
    # and a real jar is consulted (and filled) on every request.
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": user_agent},
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    )
