"""Health endpoints for load balancers and orchestrators.

``GET /healthz``: the process is alive (its event loop answers); never touches the database,
so a database outage does not get every process restarted at once.
``GET /readyz``: the process can do its work: the database answers within a few seconds and
its schema has no pending migrations (a new release whose ``feedfed migrate`` has not run
yet). 200 when ready, 503 with a JSON body saying why not.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from bridge.appkeys import CONTEXT
from bridge.errors import StoreError
from bridge.store.base import Store

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

READY_TIMEOUT = 3.0
"""Seconds the database has to answer the readiness check."""

NO_STORE = {"Cache-Control": "no-store"}

# What a store raises when its database is gone or refuses: our own error, the drivers'
# (asyncpg talks to the pool directly for migration bookkeeping), sockets and timeouts.
DATABASE_ERRORS = (
    StoreError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
)


@dataclass(frozen=True)
class Readiness:
    """The verdict of one readiness check; ``body`` is what ``/readyz`` answers."""

    ready: bool
    reason: str | None = None
    error: str | None = None
    pending: list[int] = field(default_factory=list)

    @property
    def body(self) -> dict[str, object]:
        """The JSON document for ``/readyz``."""
        if self.ready:
            return {"status": "ready", "database": "ok", "migrations": "current"}
        body: dict[str, object] = {"status": "unavailable", "reason": self.reason}
        if self.error is not None:
            body["error"] = self.error
        if self.pending:
            body["pending_migrations"] = self.pending
        return body


async def check_ready(store: Store, timeout: float = READY_TIMEOUT) -> Readiness:
    """Ask the database for its applied migrations, within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            pending = await store.pending_migrations()
    except DATABASE_ERRORS as exc:
        error = str(exc) or type(exc).__name__
        log.warning("readiness: database unreachable: %s", error)
        return Readiness(False, "database unreachable", error=error)
    if pending:
        return Readiness(False, "migrations pending: run feedfed migrate", pending=pending)
    return Readiness(True)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Alive: answered by the event loop, nothing else consulted."""
    return web.json_response({"status": "ok"}, headers=NO_STORE)


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: the database answers and its schema is current (else 503, saying why)."""
    readiness = await check_ready(request.app[CONTEXT].store)
    return web.json_response(
        readiness.body, status=200 if readiness.ready else 503, headers=NO_STORE
    )
