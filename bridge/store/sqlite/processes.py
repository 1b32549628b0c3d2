"""Several processes on one SQLite file: job notices between them, and one holder per worker id.

SQLite lets a web process (``feedfed serve --no-workers``), a worker process (``feedfed
worker``) and the commands (``feedfed deliveries retry`` …) share one database file: WAL lets
readers run beside the one writer, writers wait for each other (busy timeout), and every
claim of jobs or blogs is one atomic statement. Two things it does not give:

* **Job notices.** PostgreSQL wakes other processes with ``NOTIFY``; here each listening
  process binds a Unix datagram socket in the directory ``<database>-processes/`` beside the
  file, and a process that made jobs claimable (after its commit) sends one byte to every
  socket there but its own. Sockets of processes that died are removed by the next sender
  (the kernel refuses the send). Notices are an optimisation, as on PostgreSQL: polling the
  queue every ``job_poll_interval`` stays the fallback (also where a socket cannot be made,
  say a path longer than the kernel's limit of 107 bytes).
* **One live holder per worker id.** A worker id is stable on SQLite so that a restarted
  process takes back, at once, the jobs its earlier life left running. Two live processes
  under one id would take each other's jobs back; the id is therefore held with an exclusive
  ``flock`` on ``<database>-processes/<id>.lock`` for the life of the store, which the kernel
  drops when the process dies (SIGKILL included).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

from bridge.errors import StoreError
from bridge.store.sqlite.connection import SQLiteBase

log = logging.getLogger(__name__)

SOCKET_SUFFIX = ".jobs"
"""Listening sockets' names end so; the directory also holds the worker ids' lock files."""

_MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


class WorkerIdTaken(StoreError):
    """Another live process holds this worker id on this SQLite database."""


class ProcessRows(SQLiteBase):
    """Job notices and worker-id locks for processes sharing this SQLite file."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._own_sockets: set[str] = set()
        self._peers: list[str] = []
        self._peers_seen: int | None = None
        """The directory's mtime when ``_peers`` was read from it."""
        self._sender: socket.socket | None = None
        self._held_ids: dict[str, int] = {}
        """Worker id → the descriptor holding its lock."""

    async def close(self) -> None:
        """Close the connections, then drop the held worker ids and the notice sender."""
        try:
            await super().close()
        finally:
            for fd in self._held_ids.values():
                os.close(fd)  # closing the descriptor drops its flock
            self._held_ids = {}
            if self._sender is not None:
                self._sender.close()
                self._sender = None

    def _processes_dir(self) -> Path | None:
        """``<database>-processes``; None for an in-memory database (one process only)."""
        if self._path == ":memory:":
            return None
        return Path(f"{self._path}-processes")

    # -- notices ---------------------------------------------------------------------------

    def _jobs_claimable(self) -> None:
        """Tell the other processes that jobs became claimable: now, or when the open
        ``transaction()`` of the caller commits (a listener woken before it could not see
        the jobs yet)."""
        if self._in_tx.get():
            self._after_commit(self._send_jobs_notice)
        else:
            self._send_jobs_notice()

    def _send_jobs_notice(self) -> None:
        directory = self._processes_dir()
        if directory is None:
            return
        try:
            changed = directory.stat().st_mtime_ns
        except FileNotFoundError:
            return  # nobody ever listened
        if changed != self._peers_seen:
            # Names come and go with their processes; rescanned only when the directory
            # changed, so a busy inbox pays one stat per notice.
            self._peers = [
                str(entry)
                for entry in directory.iterdir()
                if entry.name.endswith(SOCKET_SUFFIX) and str(entry) not in self._own_sockets
            ]
            self._peers_seen = changed
        if not self._peers:
            return
        sender = self._sender
        if sender is None:
            sender = self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
        for peer in list(self._peers):
            try:
                sender.sendto(b"j", peer)
            except BlockingIOError:
                pass  # its queue is full: it has notices waiting already
            except (ConnectionRefusedError, FileNotFoundError):
                # A process that died without removing its socket: nobody will read it.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(peer)
                self._peers.remove(peer)
            except OSError as exc:
                log.warning("job notice to %s not sent (it will poll): %s", peer, exc)

    async def listen_jobs(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process makes jobs claimable in this database (and
        once when listening starts), until cancelled."""
        wake()
        directory = self._processes_dir()
        if directory is None:
            await asyncio.Event().wait()  # one process: its own enqueues wake it
            return
        name = directory / f"{os.getpid()}-{secrets.token_hex(4)}{SOCKET_SUFFIX}"
        sock = _bound_socket(directory, name)
        if sock is None:
            await asyncio.Event().wait()  # polling the queue only
            return

        def readable() -> None:
            # Many notices read as one wake-up: the claim it triggers finds every job.
            with contextlib.suppress(BlockingIOError):
                while sock.recv(64):
                    pass
            wake()

        self._own_sockets.add(str(name))
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), readable)
        try:
            await asyncio.Event().wait()
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()
            self._own_sockets.discard(str(name))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    # -- worker ids ------------------------------------------------------------------------

    def hold_worker_id(self, worker_id: str) -> None:
        """Hold ``worker_id`` for this process until the store closes; raises
        :class:`WorkerIdTaken` while another live process holds it. Holding it again is a
        no-op."""
        directory = self._processes_dir()
        if directory is None or worker_id in self._held_ids:
            return
        directory.mkdir(exist_ok=True)
        digest = hashlib.sha256(worker_id.encode()).hexdigest()[:16]
        path = directory / f"worker-{digest}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise WorkerIdTaken(
                    f"another process runs the job worker {worker_id!r} on {self._path}: "
                    "on SQLite run `feedfed serve --no-workers` beside `feedfed worker`, "
                    "or give the workers different --kinds"
                ) from exc
            raise StoreError(f"cannot lock {path}: {exc}") from exc
        self._held_ids[worker_id] = fd
        # Who holds it, for an operator wondering (the lock is what counts).
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {worker_id}\n".encode())


def _bound_socket(directory: Path, name: Path) -> socket.socket | None:
    """A non-blocking datagram socket bound at ``name``; None (logged) where none can be."""
    if len(os.fsencode(name)) > _MAX_SOCKET_PATH:
        log.info("job notices off (socket path too long: %s): polling the queue", name)
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        directory.mkdir(exist_ok=True)
        sock.setblocking(False)
        sock.bind(str(name))
    except OSError as exc:
        sock.close()
        log.warning("job notices off (cannot listen at %s: %s): polling the queue", name, exc)
        return None
    return sock
