"""Run the real ``feedfed`` command in a subprocess, as a user would."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def feedfed_env(workdir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a bridge on 127.0.0.1:port with its SQLite file in ``workdir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDFED_")}
    env.update(
        FEEDFED_BASE_URL=f"http://127.0.0.1:{port}",
        FEEDFED_LISTEN=f"127.0.0.1:{port}",
        FEEDFED_DATABASE_URL=f"sqlite:///{workdir / 'feedfed.db'}",
    )
    env.update(extra or {})
    return env


async def run_feedfed(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run ``feedfed ARGS`` to completion; return (exit status, stdout+stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


@asynccontextmanager
async def running_bridge(env: dict[str, str], *args: str) -> AsyncIterator[str]:
    """Start ``feedfed serve``; yield its base URL once it answers; stop it with SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        *args,
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = env["FEEDFED_BASE_URL"]
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                if proc.returncode is not None:
                    break
                try:
                    async with session.get(f"{base}/.well-known/nodeinfo") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("feedfed serve did not answer within 10 s")
        if proc.returncode is not None:
            assert proc.stdout is not None
            output = (await proc.stdout.read()).decode()
            raise AssertionError(f"feedfed serve exited {proc.returncode}:\n{output}")
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
