"""Job notices between processes: ``LISTEN``/``NOTIFY`` on PostgreSQL.

A statement that makes jobs claimable (an enqueue, jobs released or requeued) also sends a
``NOTIFY`` on :data:`JOBS_CHANNEL` with the schema's name as payload; PostgreSQL delivers it
when the transaction commits, so a listener never wakes for jobs it cannot see yet. Worker
processes listen on a connection of their own (:meth:`JobNotices.listen_jobs`) and wake at
once instead of at their next poll of the queue. Notices are an optimisation: polling stays
the fallback, and a lost listening connection is logged and opened again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from bridge.store.postgres.connection import PostgresBase, redact

log = logging.getLogger(__name__)

JOBS_CHANNEL = "feedfed_jobs"
"""The channel; channels are per database, so the payload names the schema."""

JOBS_NOTICE = f"pg_notify('{JOBS_CHANNEL}', current_schema())"
"""The SQL expression that sends the jobs notice (delivered when the transaction commits)."""

# What a listening connection can fail with: the server gone, the network, a timeout.
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def notifying(statement: str) -> str:
    """``statement`` (a data-modifying statement with ``RETURNING 1``) as one statement that
    returns how many rows it touched and, if any, sends the jobs notice."""
    return (
        f"WITH touched AS ({statement}), n AS (SELECT count(*) AS n FROM touched) "
        f"SELECT n.n FROM n "
        f"LEFT JOIN LATERAL (SELECT {JOBS_NOTICE} WHERE n.n > 0) AS notice ON TRUE"
    )


class ListenerLost(ConnectionError):
    """The listening connection was closed (by the server, or the network)."""


class JobNotices(PostgresBase):
    """Listening for the jobs notices of this store's schema."""

    async def listen_jobs(
        self,
        wake: Callable[[], None],
        *,
        check_interval: float = 30.0,
        retry_pause: float = 5.0,
    ) -> None:
        """Call ``wake`` whenever another process (or this one) makes jobs claimable in this
        schema, until cancelled. ``wake`` is also called each time listening (re)starts:
        what was enqueued while nobody listened is found by the claim it triggers.

        The connection is checked every ``check_interval`` seconds (a network that drops it
        silently shows no other sign); a lost connection is logged and opened again after
        ``retry_pause`` seconds, for as long as it takes.
        """
        while True:
            try:
                conn = await asyncpg.connect(self.url, timeout=check_interval)
            except _CONNECTION_ERRORS as exc:
                log.warning(
                    "cannot listen for job notices on %s (polling meanwhile; retry in %g s): %s",
                    redact(self.url),
                    retry_pause,
                    exc,
                )
                await asyncio.sleep(retry_pause)
                continue
            try:
                await _listen(conn, wake, check_interval)
            except _CONNECTION_ERRORS as exc:
                log.warning(
                    "job notice connection lost (polling meanwhile; reconnecting in %g s): %r",
                    retry_pause,
                    exc,
                )
            finally:
                # Never waits on a connection that may be dead: terminate() only closes it.
                conn.terminate()
            await asyncio.sleep(retry_pause)


async def _listen(
    conn: asyncpg.Connection, wake: Callable[[], None], check_interval: float
) -> None:
    """Listen on ``conn`` until it fails (raises one of the connection errors)."""
    schema = await conn.fetchval("SELECT current_schema()")
    lost = asyncio.Event()

    def on_notice(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == schema:
            wake()

    conn.add_termination_listener(lambda _conn: lost.set())
    await conn.add_listener(JOBS_CHANNEL, on_notice)
    log.info("listening for job notices schema=%s pid=%s", schema, conn.get_server_pid())
    wake()
    while True:
        try:
            await asyncio.wait_for(lost.wait(), check_interval)
        except TimeoutError:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), check_interval)
        else:
            raise ListenerLost("the server closed the connection")
