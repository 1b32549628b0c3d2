"""One aiohttp server on 127.0.0.1 answering for many fake instances, routed by ``Host``.

A hundred "hosts" need not be a hundred servers: each :class:`FakeInstance` added here is
served under its own host name on the one port (``http://{name}:{port}``), and
:meth:`FakeServer.fleet` builds hosts and followers in bulk for fan-out tests. ``log`` sees
every inbox POST to any of them, with counts per inbox and host and duplicate deliveries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes import httpsig
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_actors import FakeActor
from tests.fakes.instance_records import Log
from tests.fakes.resolver import LOOPBACK, MappingResolver, loopback_tripwire


class FakeServer:
    """Fake instances by host name on one port of 127.0.0.1 (virtual hosting)."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        resolve: Mapping[str, str] | None = None,
    ) -> None:
        """``session`` is what the instances reach the bridge with; without one, a session
        is made at start whose resolver knows the instances' names and ``resolve``
        (name → loopback address), and refuses the rest."""
        self.instances: dict[str, FakeInstance] = {}
        self.log = Log()
        self.port: int | None = None
        self._session, self._own_session = session, False
        self._resolver = MappingResolver(dict(resolve or {}))
        self._server: TestServer | None = None

    @property
    def names(self) -> dict[str, str]:
        """Every instance's host name mapped to 127.0.0.1, for the bridge's test resolver."""
        return {name: LOOPBACK for name in self.instances}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The injected session, or the loopback-only one made at start."""
        if self._session is None:
            raise RuntimeError("the fake server is not started")
        return self._session

    def add(self, instance: FakeInstance) -> FakeInstance:
        """Serve ``instance`` here too (before or after start)."""
        instance.server = self
        self.instances[instance.name] = instance
        self._resolver.names[instance.name] = (LOOPBACK,)
        return instance

    def instance(self, name: str, **options: Any) -> FakeInstance:
        """A new instance named ``name`` served here (options as for :class:`FakeInstance`)."""
        return self.add(FakeInstance(name, **options))

    def fleet(
        self,
        hosts: int,
        actors_per_host: int,
        *,
        prefix: str = "host",
        shared_inbox: bool = True,
        **options: Any,
    ) -> list[FakeActor]:
        """``hosts`` instances ``{prefix}{i}.test`` with actors ``user{j}``; all their actors.

        They share one RSA key: making thousands of keys would take minutes, and a fleet
        stands in for many followers, not for many distinct signers.
        """
        key = httpsig.new_key()
        actors = []
        for number in range(hosts):
            instance = self.instance(f"{prefix}{number}.test", key=key, **options)
            actors += [
                instance.add_actor(f"user{n}", key=key, shared_inbox=shared_inbox)
                for n in range(actors_per_host)
            ]
        return actors

    async def start(self) -> FakeServer:
        """Listen on an ephemeral port of 127.0.0.1 (a second call does nothing)."""
        if self._server is not None:
            return self
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._server = TestServer(app, host=LOOPBACK)
        await self._server.start_server()
        self.port = self._server.port
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False)
            trace = loopback_tripwire(self._resolver)
            self._session = aiohttp.ClientSession(connector=connector, trace_configs=[trace])
            self._own_session = True
        return self

    async def close(self) -> None:
        """Stop serving; close the session made here."""
        if self._own_session and self._session is not None:
            await self._session.close()
        if self._server is not None:
            await self._server.close()

    async def __aenter__(self) -> FakeServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        name = host.rpartition(":")[0] or host
        instance = self.instances.get(name.lower())
        if instance is None:
            return web.Response(status=421, text=f"no fake instance answers for {host!r}")
        return await instance.handle(request)
