"""A real Fedify instance (``tests/fedify/peer.mjs``) as a test peer, run by Node in a subprocess.

``async with FedifyPeer() as peer:`` starts the peer on a free 127.0.0.1 port with the actor
``alice``; the test makes alice follow an actor by URL (``await peer.follow(url)``) and reads what
alice's inboxes accepted (``await peer.received()``, ``await peer.wait_for("Accept")``). Fedify
runs its inbox listeners only after it verified the sender's signature and that the signer owns
the activity, so everything in ``received()`` passed Fedify's verification;
``deliveries()`` lists every POST to an inbox with Fedify's answer, refusals included.

Call :func:`require_fedify` first: it skips the test with a clear message when ``node`` or the
peer's ``node_modules`` is missing, except under ``CI``, where it fails instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest

PEER_DIR = Path(__file__).resolve().parent.parent / "fedify"
PEER_SCRIPT = PEER_DIR / "peer.mjs"
INSTALL_HINT = "npm ci --prefix tests/fedify"
MIN_NODE = 20


class FedifyPeerError(AssertionError):
    """The peer refused a command, failed to start, or died; carries its recent output."""


@dataclass(frozen=True)
class Received:
    """One activity an inbox listener of the peer ran for (so Fedify verified it)."""

    seq: int
    type: str
    id: str | None
    actor: str | None
    object: str | None
    object_type: str | None
    recipient: str | None
    inbox: str
    verified: bool
    verified_by: str
    key_id: str | None
    signed_headers: tuple[str, ...]
    activity: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Received:
        signature = data.get("signature") or {}
        return cls(
            seq=data["seq"],
            type=data["type"],
            id=data["id"],
            actor=data["actor"],
            object=data["object"],
            object_type=data["objectType"],
            recipient=data["recipient"],
            inbox=data["inbox"],
            verified=data["verified"],
            verified_by=data["verifiedBy"],
            key_id=signature.get("keyId"),
            signed_headers=tuple(signature.get("headers") or ()),
            activity=data["activity"],
        )


@dataclass(frozen=True)
class Delivery:
    """One POST to one of the peer's inboxes, with the status Fedify answered."""

    seq: int
    path: str
    status: int
    answer: str
    activity_id: str | None
    type: str | None
    key_id: str | None
    headers: dict[str, str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        signature = data.get("signature") or {}
        return cls(
            seq=data["seq"],
            path=data["path"],
            status=data["status"],
            answer=data["answer"],
            activity_id=data["activityId"],
            type=data["type"],
            key_id=signature.get("keyId"),
            headers=data["headers"],
        )


@dataclass(frozen=True)
class Followed:
    """What ``follow`` sent: the Follow's id and the followed actor's inboxes."""

    id: str
    actor: str
    inbox: str | None
    shared_inbox: str | None


def fedify_unavailable(peer_dir: Path = PEER_DIR, node: str = "node") -> str | None:
    """Why the peer in ``peer_dir`` cannot run here with ``node`` (``None`` when it can)."""
    executable = shutil.which(node)
    if executable is None:
        return f"{node} is not installed (the Fedify peer needs Node {MIN_NODE}+)"
    version = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    match = re.fullmatch(r"v(\d+)\..*", version)
    if match is None or int(match.group(1)) < MIN_NODE:
        return (
            f"{executable} is {version or 'of unknown version'}; the Fedify peer needs {MIN_NODE}+"
        )
    installed = peer_dir / "node_modules" / "@fedify" / "fedify" / "package.json"
    if not installed.is_file():
        return f"{peer_dir}/node_modules is missing: run `{INSTALL_HINT}`"
    wanted = json.loads((peer_dir / "package.json").read_text())["dependencies"]["@fedify/fedify"]
    have = json.loads(installed.read_text())["version"]
    if have != wanted:
        return f"{peer_dir} has @fedify/fedify {have}, package.json wants {wanted}: {INSTALL_HINT}"
    return None


def require_fedify(peer_dir: Path = PEER_DIR, node: str = "node") -> None:
    """Skip the calling test when the peer cannot run; under ``CI`` fail instead of skipping."""
    reason = fedify_unavailable(peer_dir, node)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Fedify peer unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"Fedify peer unavailable: {reason}")


class FedifyPeer:
    """The Node peer as an async context manager; see the module docstring."""

    def __init__(
        self,
        actors: tuple[str, ...] = ("alice",),
        *,
        startup_timeout: float = 30.0,
        command_timeout: float = 20.0,
        debug: bool = False,
    ) -> None:
        self.actors = actors
        self.startup_timeout = startup_timeout
        self.command_timeout = command_timeout
        self.debug = debug
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._output: deque[str] = deque(maxlen=200)
        self._readers: list[asyncio.Task[None]] = []

    @property
    def base(self) -> str:
        """The peer's origin, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def actor_id(self) -> str:
        """The id of the first actor (alice, by default)."""
        return self.actor(self.actors[0])

    def actor(self, name: str) -> str:
        """The id of the local actor ``name``."""
        return f"{self.base}/users/{name}"

    @property
    def shared_inbox(self) -> str:
        """The peer's shared inbox."""
        return f"{self.base}/inbox"

    @property
    def output(self) -> str:
        """The peer's recent stdout and stderr lines."""
        return "\n".join(self._output)

    async def __aenter__(self) -> FedifyPeer:
        env = {**os.environ, "NODE_NO_WARNINGS": "1"}
        env.pop("FEDIFY_PEER_PORT", None)
        if self.debug:
            env["FEDIFY_PEER_DEBUG"] = "1"
        self._proc = await asyncio.create_subprocess_exec(
            "node",
            str(PEER_SCRIPT),
            "--port",
            "0",
            "--actors",
            ",".join(self.actors),
            cwd=PEER_DIR,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            self.port = await asyncio.wait_for(self._await_ready(), self.startup_timeout)
        except TimeoutError:
            await self._stop()
            raise FedifyPeerError(
                f"the Fedify peer did not start within {self.startup_timeout} s:\n{self.output}"
            ) from None
        except BaseException:
            await self._stop()
            raise
        self._readers.append(asyncio.create_task(self._drain(self._stdout(), "")))
        timeout = aiohttp.ClientTimeout(total=self.command_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    def _stdout(self) -> asyncio.StreamReader:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout

    async def wait_for_output(self, text: str, timeout: float = 5.0) -> str:
        """The first output line containing ``text``, waiting up to ``timeout`` seconds (the
        peer's pipes are read in the background, so a line may trail the answer it explains)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for line in self._output:
                if text in line:
                    return line
            if loop.time() >= deadline:
                raise FedifyPeerError(
                    f"no peer output with {text!r} in {timeout} s:\n{self.output}"
                )
            await asyncio.sleep(0.02)

    async def _await_ready(self) -> int:
        assert self._proc is not None and self._proc.stderr is not None
        # stderr is drained from the start, so a chatty peer never blocks on a full pipe.
        self._readers.append(asyncio.create_task(self._drain(self._proc.stderr, "stderr: ")))
        stdout = self._stdout()
        while line := await stdout.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self._output.append(text)
            if text.startswith("READY "):
                return int(text.split()[1])
        await self._proc.wait()
        await asyncio.gather(*self._readers)
        raise FedifyPeerError(
            f"the Fedify peer exited with {self._proc.returncode} before READY:\n{self.output}"
        )

    async def _drain(self, stream: asyncio.StreamReader, prefix: str) -> None:
        while line := await stream.readline():
            self._output.append(prefix + line.decode("utf-8", "replace").rstrip())

    async def _stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for reader in self._readers:
            # The pipes close with the process; a reader still waiting is simply done.
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._readers.clear()

    async def _command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            raise FedifyPeerError("the Fedify peer is not running (use `async with FedifyPeer()`)")
        try:
            async with self._session.request(method, self.base + path, json=body) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise FedifyPeerError(
                f"{method} {path} to the Fedify peer failed: {error!r}\n{self.output}"
            ) from error
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if status != 200 or not isinstance(data, dict):
            raise FedifyPeerError(
                f"{method} {path} -> {status}: {text[:2000]}\npeer output:\n{self.output}"
            )
        return data

    async def follow(self, actor_url: str, *, as_actor: str | None = None) -> Followed:
        """``as_actor`` (alice) looks ``actor_url`` up and sends it a Follow; returns once the
        target's inbox answered 2xx (raises :class:`FedifyPeerError` otherwise)."""
        data = await self._command(
            "POST", "/_control/follow", {"actor": actor_url, "as": as_actor or self.actors[0]}
        )
        return Followed(
            id=data["id"],
            actor=data["actor"],
            inbox=data["inbox"],
            shared_inbox=data["sharedInbox"],
        )

    async def unfollow(self, actor_url: str, *, as_actor: str | None = None) -> str:
        """Send ``Undo(Follow)`` for an earlier :meth:`follow`; returns the Undo's id."""
        data = await self._command(
            "POST", "/_control/unfollow", {"actor": actor_url, "as": as_actor or self.actors[0]}
        )
        return str(data["id"])

    async def received(self) -> list[Received]:
        """Every activity the peer's inbox listeners ran for, oldest first."""
        data = await self._command("GET", "/_control/received")
        return [Received.from_json(item) for item in data["activities"]]

    async def deliveries(self) -> list[Delivery]:
        """Every POST to the peer's inboxes with Fedify's answer, oldest first."""
        data = await self._command("GET", "/_control/deliveries")
        return [Delivery.from_json(item) for item in data["deliveries"]]

    async def wait_for(
        self,
        type_: str,
        timeout: float = 10.0,
        *,
        where: Callable[[Received], bool] | None = None,
        poll: float = 0.05,
    ) -> Received:
        """The first received activity of ``type_`` (matching ``where``), waiting up to
        ``timeout`` seconds; on timeout the error lists what did arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            activities = await self.received()
            for activity in activities:
                if activity.type == type_ and (where is None or where(activity)):
                    return activity
            if loop.time() >= deadline:
                deliveries = await self.deliveries()
                raise FedifyPeerError(
                    f"no {type_} reached the Fedify peer within {timeout} s; received: "
                    f"{[(a.type, a.id) for a in activities]}; inbox POSTs: "
                    f"{[(d.type, d.activity_id, d.status, d.answer) for d in deliveries]}\n"
                    f"peer output:\n{self.output}"
                )
            await asyncio.sleep(poll)
