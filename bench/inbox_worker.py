"""The inbox bench's worker process: a real ``feedfed worker --kinds inbound`` on the bench's
SQLite file, beside the inbox in the bench's own process (``feedfed serve --no-workers`` and
``feedfed worker`` on one file, as on a machine with two cores or more)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from worker_process import spawn_worker

from bridge.store.sqlite.processes import SOCKET_SUFFIX


@contextlib.asynccontextmanager
async def worker_process(workdir: Path, database: Path, base_url: str) -> AsyncIterator[int]:
    """Run the worker on ``database`` until the block ends (SIGTERM); yields its pid once it
    listens for job notices (the default poll of the queue, 1 s, is only the fallback)."""
    settings = {
        "FEEDFED_DATABASE_URL": f"sqlite:///{database}",
        "FEEDFED_BASE_URL": base_url,
        **({"FEEDFED_CONFIG": os.environ["XCFG"]} if "XCFG" in os.environ else {}),
    }
    log_path = workdir / "worker.log"
    proc = await spawn_worker(settings, "inbound", log_path)
    try:
        await _until_listening(proc, Path(f"{database}-processes"), log_path)
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _until_listening(
    proc: asyncio.subprocess.Process, directory: Path, log_path: Path
) -> None:
    for _ in range(600):
        if proc.returncode is not None:
            log = await asyncio.to_thread(log_path.read_text)
            raise RuntimeError(f"worker exited {proc.returncode}:\n{log[-2000:]}")
        if await asyncio.to_thread(_listens, directory, proc.pid):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the worker process did not listen for job notices within 30 s")


def _listens(directory: Path, pid: int) -> bool:
    """Whether process ``pid`` has its notice socket in ``directory``."""
    if not directory.exists():
        return False
    return any(
        p.name.startswith(f"{pid}-") and p.name.endswith(SOCKET_SUFFIX) for p in directory.iterdir()
    )
