"""The bench's receiving end: a process of its own answering ``202 Accepted`` to every POST,
standing for the inboxes of other machines.

    .venv/bin/python bench/receiver.py PORT HOSTS [DELAY_MS]

listens on 127.0.0.1:PORT and on HOSTS more addresses 127.0.0.2 … (an ephemeral port
each), then prints ``READY`` and those ports. Each answer is sent DELAY_MS milliseconds after
its request was read (default 0: at once), standing for a remote inbox's latency.
:func:`receiver` starts it for a bench."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from procstat import process_cpu


class Inbox(asyncio.Protocol):
    """The receiving end of one connection: reads each request whole (head and
    ``Content-Length`` body), answers ``202 Accepted``, keeps the connection open.

    A bare HTTP/1.1 responder rather than an aiohttp server: the receivers stand for other
    machines, and here they share the bridge's cores, so the less CPU they take the more the
    bench measures the bridge (an aiohttp server took ~200 us per request, this ~40 us).
    """

    ANSWER = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        """Seconds between reading a request and answering it."""
        self.buffer = bytearray()
        self.body_left = -1  # -1: reading a head
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while True:
            if self.body_left < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.body_left = _content_length(bytes(self.buffer[:end]))
                del self.buffer[: end + 4]
            if len(self.buffer) < self.body_left:
                return
            del self.buffer[: self.body_left]
            self.body_left = -1
            if self.delay > 0:
                # A timer, not a sleeping task: thousands of delayed answers cost the
                # receiver one heap entry each and no CPU while they wait.
                asyncio.get_running_loop().call_later(self.delay, self._answer)
            else:
                self._answer()

    def _answer(self) -> None:
        assert self.transport is not None
        if not self.transport.is_closing():
            self.transport.write(self.ANSWER)


def _content_length(head: bytes) -> int:
    """The body length a request head announces (the bridge always sends one)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
        if name.strip().lower() == b"transfer-encoding":
            raise ValueError("the bench receiver reads Content-Length bodies only")
    return 0


def receiver_main(port: int, hosts: int, delay_ms: float = 0.0) -> None:
    """The receiver process: read each POST, answer 202 after ``delay_ms``; on
    127.0.0.1:``port`` and on ``hosts`` more addresses 127.0.0.2 … (an ephemeral port each),
    for bridge processes that cannot use the bench's resolver. Prints ``READY`` and those
    ports."""

    def inbox() -> Inbox:
        return Inbox(delay_ms / 1000)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(inbox, "127.0.0.1", port, backlog=1024)]
        for i in range(hosts):
            servers.append(await loop.create_server(inbox, f"127.0.0.{i + 2}", 0, backlog=256))
        ports = [str(server.sockets[0].getsockname()[1]) for server in servers[1:]]
        print("READY", ",".join(ports), flush=True)
        await asyncio.gather(*(server.serve_forever() for server in servers))

    asyncio.run(serve())


@dataclass
class Receiver:
    """The receiver process: its port and pid."""

    port: int
    pid: int
    host_ports: list[int]
    """The ports of hosts 127.0.0.2 …, in order."""

    def cpu_seconds(self) -> float:
        """CPU time the receiver has used (Linux ``/proc``)."""
        return process_cpu(self.pid)


@asynccontextmanager
async def receiver(hosts: int = 0, delay_ms: float = 0.0) -> AsyncIterator[Receiver]:
    """The receiver in a process of its own (with ``hosts`` addressed hosts), answering
    ``delay_ms`` milliseconds after each request."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        str(port),
        str(hosts),
        str(delay_ms),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        ready, _, ports = line.decode().strip().partition(" ")
        if ready != "READY":
            raise RuntimeError(f"receiver did not start: {line!r}")
        yield Receiver(port, proc.pid, [int(p) for p in ports.split(",") if p])
    finally:
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    receiver_main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) if sys.argv[3:] else 0.0)
