"""A measuring instrument, not a client for the bridge: the least an HTTP/1.1 POST can cost
on the event loop, for ``fanout.py --bare-client``.

The bridge POSTs its deliveries through aiohttp's ``ClientSession`` (one per process, the
guarded one for everything remote). To tell how much of a delivery's event-loop time is
that client and how fast the rest of the pipeline could go without it, the bench can put
this in its place: keep-alive connections per host to the bench receiver (every ``*.bench``
name is 127.0.0.1), the request written in one piece, the answer's status line and
``Content-Length`` read, nothing else. It has no TLS, no address guard, no chunked answers,
no redirects and no limits: the receiver is known. A bare loop of POSTs costs ~40 us of
event-loop CPU each this way against ~105 us through a ``ClientSession`` (2026-12-07).

Only the surface ``Deliverer`` uses is offered: ``post(url, data=, headers=, ...)`` as an
async context manager whose answer has ``status``, ``content_length`` and ``headers``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from yarl import URL


@dataclass
class BareAnswer:
    """What the delivery reads of an answer."""

    status: int
    content_length: int
    headers: dict[str, str] = field(default_factory=dict)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer handed to ``waiter``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[BareAnswer] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the receiver closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().title()] = value.strip()
        length = int(headers.get("Content-Length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(BareAnswer(int(lines[0].split(" ", 2)[1]), length, headers))


class BareSession:
    """Keep-alive connections to 127.0.0.1, by port; see the module docstring."""

    def __init__(self) -> None:
        self._idle: dict[int, list[_Connection]] = {}

    @asynccontextmanager
    async def post(
        self, url: URL, *, data: bytes, headers: Mapping[str, str], **_: Any
    ) -> AsyncIterator[BareAnswer]:
        """POST ``data`` to ``url`` and yield the answer (timeouts and redirects ignored)."""
        loop = asyncio.get_running_loop()
        port = url.port or 80
        idle = self._idle.setdefault(port, [])
        while idle and idle[-1].closed:
            idle.pop()
        if idle:
            conn = idle.pop()
        else:
            _, conn = await loop.create_connection(_Connection, "127.0.0.1", port)
        head = [f"POST {url.raw_path_qs} HTTP/1.1\r\nContent-Length: {len(data)}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        head.append("\r\n")
        conn.waiter = loop.create_future()
        assert conn.transport is not None
        conn.transport.write("".join(head).encode("latin-1") + data)
        answer = await asyncio.wait_for(conn.waiter, 30)
        idle.append(conn)
        yield answer

    async def close(self) -> None:
        """Close every idle connection."""
        for conns in self._idle.values():
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()
        self._idle.clear()
